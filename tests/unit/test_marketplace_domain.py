"""The marketplace's rules that need no store: names, version labels, and
the image identifier that stays the same across an appliance's versions."""

from __future__ import annotations

import pytest

from slipway.domain.marketplace import (
    ImageFile,
    appliance_name_problem,
    image_identifier,
    text_problem,
    version_label_problem,
    vo_name_problem,
)

APPLIANCE = "6f9619ff-8b86-d011-b42d-00c04fc964ff"


def a_file(**changes: object) -> ImageFile:
    values: dict[str, object] = {
        "format": "qcow2",
        "size": 1,
        "sha512": "a" * 128,
        "verified": True,
    }
    return ImageFile(**{**values, **changes})  # type: ignore[arg-type]


def test_an_image_keeps_its_identifier_from_one_version_to_the_next() -> None:
    first = a_file(sha512="a" * 128, size=10)
    second = a_file(sha512="b" * 128, size=20, url="https://example.org/v2.qcow2")
    assert image_identifier(APPLIANCE, first) == image_identifier(APPLIANCE, second)


def test_files_of_another_slot_or_appliance_get_other_identifiers() -> None:
    base = image_identifier(APPLIANCE, a_file())
    assert image_identifier(APPLIANCE, a_file(arch="aarch64")) != base
    assert image_identifier(APPLIANCE, a_file(format="ova")) != base
    assert image_identifier("0" * 8 + "-0000-4000-8000-" + "0" * 12, a_file()) != base


@pytest.mark.parametrize("name", ["alice/web", "team/images/debian-12", "a_b/c.d-e"])
def test_good_appliance_names(name: str) -> None:
    assert appliance_name_problem(name) is None


@pytest.mark.parametrize(
    "name", ["web", "alice/../bob", "/alice/web", "alice/web/", "alice/we b", "alice/wéb", ""]
)
def test_bad_appliance_names(name: str) -> None:
    assert appliance_name_problem(name) is not None


@pytest.mark.parametrize("label", ["1", "2026.11.29", "1.0-rc1", "3.3.0+build~2"])
def test_good_version_labels(label: str) -> None:
    assert version_label_problem(label) is None


@pytest.mark.parametrize("label", ["", "-1", "../1", "1/2", "a" * 65, "1 0", "v\x00"])
def test_bad_version_labels(label: str) -> None:
    assert version_label_problem(label) is not None


@pytest.mark.parametrize("name", ["vo.example.org", "fedcloud.egi.eu", "vo-1", "a"])
def test_good_vo_names(name: str) -> None:
    assert vo_name_problem(name) is None


@pytest.mark.parametrize("name", ["VO.org", "vo..org", "-vo.org", "vo-.org", "vo/org", "a" * 64])
def test_bad_vo_names(name: str) -> None:
    assert vo_name_problem(name) is not None


def test_text_refuses_control_characters_and_length() -> None:
    assert text_problem("title", "ok", 10) is None
    assert "control character" in (text_problem("title", "a\x1b[2Jb", 10) or "")
    assert "over 3" in (text_problem("title", "long", 3) or "")
    assert text_problem("notes", "line\nline", 100, multi_line=True) is None


@pytest.mark.parametrize(
    ("name", "expected"),
    [("Debian", "debian"), ("Scientific Linux", "scientific"), ("Red Hat Enterprise Linux", "rhel"),
     ("Rocky Linux", "rocky"), ("CernVM 4", "cernvm4"), ("", None), (None, None)],
)  # fmt: skip
def test_an_os_name_becomes_the_os_distro_glance_and_egis_annotations_use(
    name: str | None, expected: str | None
) -> None:
    from slipway.domain.imagelists import glance_os_distro

    assert glance_os_distro(name) == expected
