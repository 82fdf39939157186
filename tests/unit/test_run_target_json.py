"""A run's target in the runs table's JSON: what a deploy writes comes back
the same, runs stored by earlier versions load, and a broken document is an
error that names the run and the key."""

from __future__ import annotations

import json

import pytest

from slipway.adapters.store._run_target_json import target_from_json, target_to_json
from slipway.domain.run_target import Recipes
from slipway.errors import SlipwayError
from tests.run_targets import SEALED, a_run_target, stored_by_earlier_deploys

REQUIRED = (
    "native_id",
    "flavor",
    "cpu",
    "ram",
    "login_user",
    "kind",
    "driver",
    "run_key",
    "sealed_key",
)
DEFAULTS = {
    "disk": None,
    "platform": None,
    "security_groups": (),
    "ports": (),
    "recipes": Recipes(),
    "user_keys": (),
}


def through_json(document: object) -> object:
    """The document as the database gives it back."""
    return json.loads(json.dumps(document))


def test_a_target_comes_back_from_its_json_unchanged() -> None:
    target = a_run_target()
    assert target_from_json("r1", through_json(target_to_json(target))) == target  # type: ignore[arg-type]


def test_a_target_with_only_the_required_fields_comes_back_unchanged() -> None:
    target = a_run_target(
        disk=None, platform=None, security_groups=(), ports=(), recipes=Recipes(), user_keys=()
    )
    assert target_from_json("r1", through_json(target_to_json(target))) == target  # type: ignore[arg-type]


def test_the_stored_keys_are_those_earlier_versions_wrote() -> None:
    assert target_to_json(a_run_target()).keys() == stored_by_earlier_deploys().keys()


def test_a_run_stored_by_an_earlier_version_loads() -> None:
    assert target_from_json("r1", stored_by_earlier_deploys()) == a_run_target()


def test_keys_this_version_does_not_know_are_ignored() -> None:
    stored = stored_by_earlier_deploys() | {"spot_price": 0.02, "zone": "ch-gva-2"}
    assert target_from_json("r1", stored) == a_run_target()


@pytest.mark.parametrize(("key", "default"), DEFAULTS.items())
def test_a_missing_or_null_optional_key_gets_its_default(key: str, default: object) -> None:
    stored = stored_by_earlier_deploys()
    del stored[key]
    assert target_from_json("r1", stored) == a_run_target(**{key: default})
    assert target_from_json("r1", stored | {key: None}) == a_run_target(**{key: default})


@pytest.mark.parametrize("key", REQUIRED)
def test_a_missing_required_key_names_the_run_and_the_key(key: str) -> None:
    stored = stored_by_earlier_deploys()
    del stored[key]
    with pytest.raises(SlipwayError) as caught:
        target_from_json("run0042", stored)
    assert caught.value.message == f"run run0042: its stored target has no {key!r}"


def test_a_null_required_key_is_a_missing_one() -> None:
    with pytest.raises(SlipwayError, match="run r1: its stored target has no 'login_user'"):
        target_from_json("r1", stored_by_earlier_deploys() | {"login_user": None})


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("cpu", "two"),
        ("cpu", 1.5),
        ("ram", "4 GB"),
        ("kind", "virtual-machine"),
        ("native_id", 12),
        ("security_groups", [{"name": "web", "action": "open-everything", "rules": []}]),
        ("security_groups", [{"name": "web", "action": "ensure", "rules": [{"ports": "22"}]}]),
        ("ports", [{"protocol": "tcp"}]),
        ("ports", {"port": 80}),
        ("recipes", ["apt-get install nginx"]),
        ("user_keys", "ssh-ed25519 AAAA alice"),
    ],
)
def test_a_value_of_the_wrong_kind_names_the_run_and_the_key(key: str, value: object) -> None:
    with pytest.raises(SlipwayError) as caught:
        target_from_json("r1", stored_by_earlier_deploys() | {key: value})
    assert caught.value.message == f"run r1: its stored target has a {key!r} Slipway cannot read"


def test_the_sealed_key_stays_out_of_errors() -> None:
    with pytest.raises(SlipwayError) as caught:
        target_from_json("r1", stored_by_earlier_deploys() | {"sealed_key": [SEALED]})
    assert SEALED not in str(caught.value) and SEALED not in repr(caught.value.__cause__)


def test_a_document_that_is_not_an_object_names_the_run() -> None:
    with pytest.raises(SlipwayError, match="run r1: its stored target is not a JSON object"):
        target_from_json("r1", ["debian-12-minimal"])  # type: ignore[arg-type]


def test_the_sealed_key_and_the_recipes_stay_out_of_the_targets_repr() -> None:
    shown = repr(a_run_target())
    assert SEALED not in shown and "nginx" not in shown
    assert "debian-12-minimal" in shown
