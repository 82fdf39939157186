"""A subscriber keeps the identifier and never takes an older version."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from slipway.domain.endorsers import DistinguishedName, Endorser
from slipway.domain.imagelists import (
    ImageList,
    PreviousAcceptance,
    RejectionReason,
    drop_expired_images,
    succession_problems,
    version_key,
)
from tests.endorser_ca import NOW, an_image

NAME = DistinguishedName.from_slash("/DC=org/CN=x")
LIST = ImageList(
    identifier="id-1",
    version="20261129120000",
    created=NOW,
    expires=NOW + timedelta(days=1),
    endorser=Endorser(NAME, NAME),
    images=(an_image(),),
)


@pytest.mark.parametrize(
    ("older", "newer"),
    [
        ("1", "2"),
        ("9", "10"),
        ("3.9.1", "3.10.0"),
        ("20150618211400", "20261129120000"),
        ("1.0", "1.0.1"),
    ],
)
def test_versions_order_like_numbers(older: str, newer: str) -> None:
    assert version_key(older) < version_key(newer)


def test_the_first_list_from_a_place_has_nothing_to_follow() -> None:
    assert succession_problems(None, LIST) == []


def test_the_same_or_a_newer_version_follows() -> None:
    assert succession_problems(PreviousAcceptance("id-1", "20261129120000"), LIST) == []
    assert succession_problems(PreviousAcceptance("id-1", "20261001000000"), LIST) == []


def test_an_older_version_is_a_downgrade() -> None:
    problems = succession_problems(PreviousAcceptance("id-1", "20270101000000"), LIST)
    assert [p.reason for p in problems] == [RejectionReason.VERSION_DOWNGRADE]


def test_another_identifier_is_another_list() -> None:
    problems = succession_problems(PreviousAcceptance("id-0", "1"), LIST)
    assert [p.reason for p in problems] == [RejectionReason.IDENTIFIER_CHANGED]


def test_expired_images_are_dropped_and_returned() -> None:
    old = an_image(identifier="old", expires=NOW - timedelta(seconds=1))
    undated = an_image(identifier="undated", expires=None)
    kept, dropped = drop_expired_images(replace(LIST, images=(old, an_image(), undated)), NOW)
    assert [i.identifier for i in kept.images] == [an_image().identifier, "undated"]
    assert dropped == (old,)
