"""Inheritance: key-by-key overrides, 'inherited', per-cloud natives, merged
sizes and per-cloud configuration, and where every value came from."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slipway.domain.inheritance import (
    ChainLink,
    InheritanceCycle,
    InheritedWithoutParent,
    MissingParent,
    build_chain,
    resolve_chain,
)

PARENT = ChainLink(
    "base@3",
    {
        "kind": "image",
        "login_user": "ubuntu",
        "platform": "ubuntu",
        "native": {"a": {"id": "pa"}, "b": {"id": "pb", "login_user": "cloud-user"}},
        "size": {"cpu": 1, "ram": 1, "disk": 10},
        "clouds": {"a": {"instance_type": "Small", "network": "public"}},
        "security_groups": ["slipway_managed"],
    },
    "base.yaml",
)


def child(**document: Any) -> ChainLink:
    return ChainLink("child@1", {"kind": "image", "parent": "base", **document}, "child.yaml")


def test_a_child_value_overrides_the_parent_and_says_so() -> None:
    resolved = resolve_chain([PARENT, child(login_user="debian")])
    assert resolved.document["login_user"] == "debian"
    assert resolved.origin["login_user"] == "child@1"
    assert resolved.origin["platform"] == "base@3"


def test_inherited_takes_the_parent_value_explicitly() -> None:
    resolved = resolve_chain([PARENT, child(login_user="inherited", size={"cpu": "inherited"})])
    assert resolved.document["login_user"] == "ubuntu"
    assert resolved.origin["login_user"] == "base@3"
    assert resolved.document["size"]["cpu"] == 1


def test_inherited_without_a_parent_is_an_error() -> None:
    with pytest.raises(InheritedWithoutParent):
        resolve_chain([ChainLink("x@1", {"kind": "image", "login_user": "inherited"})])


def test_native_images_are_inherited_per_cloud() -> None:
    resolved = resolve_chain([PARENT, child(native={"a": {"id": "ca"}})])
    assert resolved.document["native"] == {
        "a": {"id": "ca"},
        "b": {"id": "pb", "login_user": "cloud-user"},
    }
    assert resolved.origin["native.a"] == "child@1"
    assert resolved.origin["native.b"] == "base@3"


def test_sizes_merge_per_key() -> None:
    resolved = resolve_chain([PARENT, child(size={"ram": 8})])
    assert resolved.document["size"] == {"cpu": 1, "ram": 8, "disk": 10}
    assert resolved.origin["size.ram"] == "child@1"
    assert resolved.origin["size.cpu"] == "base@3"


def test_per_cloud_configuration_merges_per_cloud_then_per_key() -> None:
    resolved = resolve_chain(
        [PARENT, child(clouds={"a": {"instance_type": "Large"}, "b": {"instance_type": "Basic"}})]
    )
    assert resolved.document["clouds"] == {
        "a": {"instance_type": "Large", "network": "public"},
        "b": {"instance_type": "Basic"},
    }
    assert resolved.origin["clouds.a.network"] == "base@3"


def test_lists_are_replaced_whole() -> None:
    resolved = resolve_chain([PARENT, child(security_groups=["web"])])
    assert resolved.document["security_groups"] == ["web"]


def lookup_in(*links: ChainLink):  # type: ignore[no-untyped-def]
    by_name = {link.label.partition("@")[0]: link for link in links}
    return lambda ref: by_name.get(ref.partition("@")[0])


def test_a_missing_parent_names_the_child_and_the_reference() -> None:
    orphan = child()
    with pytest.raises(MissingParent, match="child@1 names parent 'base'"):
        build_chain(orphan, lookup_in())


def test_a_cycle_is_reported_with_every_file_in_it() -> None:
    a = ChainLink("a@1", {"kind": "image", "parent": "b"}, "a.yaml")
    b = ChainLink("b@1", {"kind": "image", "parent": "c"}, "b.yaml")
    c = ChainLink("c@1", {"kind": "image", "parent": "a"}, "c.yaml")
    with pytest.raises(InheritanceCycle) as caught:
        build_chain(a, lookup_in(a, b, c))
    message = str(caught.value)
    assert all(f in message for f in ("a.yaml", "b.yaml", "c.yaml"))


def test_a_module_that_names_itself_as_parent_is_a_cycle() -> None:
    a = ChainLink("a@1", {"kind": "image", "parent": "a"}, "a.yaml")
    with pytest.raises(InheritanceCycle):
        build_chain(a, lookup_in(a))


# -- properties ---------------------------------------------------------------

KEYS = ["login_user", "platform", "description"]
values = st.sampled_from(["x", "y", "z", "inherited"])
documents = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(KEYS, values),
        "size": st.fixed_dictionaries(
            {},
            optional={
                "cpu": st.sampled_from([1, 2, "inherited"]),
                "ram": st.sampled_from([1, 4, "inherited"]),
            },
        ),
        "native": st.dictionaries(
            st.sampled_from(["a", "b", "c"]),
            st.builds(lambda i: {"id": i}, st.sampled_from(["1", "2"])),
            max_size=3,
        ),
    },
)


@settings(deadline=None)  # a property, not a timing: a busy machine must not fail it
@given(st.lists(documents, min_size=1, max_size=5))
def test_every_value_comes_from_the_nearest_module_that_sets_it(docs: list[dict[str, Any]]) -> None:
    # the root cannot say 'inherited'
    root = {k: v for k, v in docs[0].items() if v != "inherited"}
    if "size" in root:
        root["size"] = {k: v for k, v in root["size"].items() if v != "inherited"}
    docs = [root, *docs[1:]]
    chain = [ChainLink(f"m{i}@1", {"kind": "image", **d}) for i, d in enumerate(docs)]
    resolved = resolve_chain(chain)
    for key in KEYS:
        setters = [i for i, d in enumerate(docs) if key in d and d[key] != "inherited"]
        if setters:
            assert resolved.document[key] == docs[setters[-1]][key]
            assert resolved.origin[key] == f"m{setters[-1]}@1"
        else:
            assert key not in resolved.document
    for cloud in ("a", "b", "c"):
        setters = [i for i, d in enumerate(docs) if cloud in d.get("native", {})]
        if setters:
            assert resolved.origin[f"native.{cloud}"] == f"m{setters[-1]}@1"
    for sub in ("cpu", "ram"):
        setters = [
            i for i, d in enumerate(docs) if d.get("size", {}).get(sub, "inherited") != "inherited"
        ]
        if setters:
            assert resolved.document["size"][sub] == docs[setters[-1]]["size"][sub]
