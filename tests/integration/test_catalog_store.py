"""The catalog on every store: memory, SQLite and PostgreSQL run the same suite.

Versions are immutable and numbered, references follow the latest unless
pinned, rights are enforced, a refused action changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_text
from slipway.domain.modules import Right
from slipway.errors import Conflict, NotFound, PermissionDenied
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService
from slipway.services.ports import UnitOfWork
from tests.conftest import cheap_hasher

IMAGE = """\
kind: image
description: {description}
login_user: debian
native: {{local: {{id: debian-12-minimal}}}}
size: {{cpu: {cpu}, ram: 1}}
"""


@pytest.fixture
def as_user(store_uow: Callable[[], UnitOfWork]) -> Callable[[str], CatalogService]:
    return lambda user: CatalogService(store_uow, user)


@pytest.fixture
def seeded(
    as_user: Callable[[str], CatalogService], examples: list[LoadedDefinition]
) -> Callable[[str], CatalogService]:
    as_user("alice").import_files(examples)
    return as_user


def image(
    name: str = "alice/images/mine", cpu: int = 1, description: str = "mine"
) -> LoadedDefinition:
    return load_text(IMAGE.format(cpu=cpu, description=description), f"{name}.yaml", name)


def test_every_save_is_a_new_version_and_unchanged_saves_are_not(
    seeded: Callable[[str], CatalogService],
) -> None:
    alice = seeded("alice")
    assert alice.import_files([image()]).saved[0].status == "new"
    assert alice.import_files([image()]).saved[0].status == "unchanged"
    saved = alice.import_files([image(cpu=2)]).saved[0]
    assert (saved.version, saved.status) == (2, "updated")
    assert [v.version for v in alice.history("alice/images/mine")] == [1, 2]
    assert alice.show("alice/images/mine@1").document["size"]["cpu"] == 1
    assert alice.show("alice/images/mine").document["size"]["cpu"] == 2


def test_a_reference_follows_the_latest_unless_pinned(
    seeded: Callable[[str], CatalogService],
) -> None:
    alice = seeded("alice")
    alice.import_files([image(cpu=1)])
    child = load_text("kind: image\nparent: alice/images/mine@1\n", "c.yaml", "alice/images/pin")
    follower = load_text("kind: image\nparent: alice/images/mine\n", "f.yaml", "alice/images/fol")
    alice.import_files([child, follower])
    alice.import_files([image(cpu=2)])
    assert alice.resolve("alice/images/pin").size.cpu == 1
    assert alice.resolve("alice/images/fol").size.cpu == 2
    assert alice.resolve("alice/images/fol").resolved.origin["size.cpu"] == "alice/images/mine@2"


def test_diff_lists_changed_keys(seeded: Callable[[str], CatalogService]) -> None:
    alice = seeded("alice")
    alice.import_files([image(cpu=1)])
    alice.import_files([image(cpu=4, description="bigger")])
    _, _, changes = alice.diff("alice/images/mine@1", "alice/images/mine@2")
    assert {(c.path, c.old, c.new) for c in changes} == {
        ("size.cpu", 1, 4),
        ("description", "mine", "bigger"),
    }


def test_a_private_module_is_invisible_to_others(seeded: Callable[[str], CatalogService]) -> None:
    seeded("alice").import_files([image()])
    with pytest.raises(NotFound, match="module alice/images/mine does not exist"):
        seeded("bob").show("alice/images/mine")
    assert "alice/images/mine" not in [v.name for v, _ in seeded("bob").list_modules()]


def test_a_reader_copies_a_module_and_owns_the_private_copy(
    seeded: Callable[[str], CatalogService],
) -> None:
    alice, bob = seeded("alice"), seeded("bob")
    alice.share(
        "examples/images/ubuntu-22.04-large",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW}),
    )
    alice.share(
        "examples/images/ubuntu-22.04",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW}),
    )
    with pytest.raises(PermissionDenied, match="edit right"):
        bob.import_files(
            [
                load_text(
                    "kind: image\nparent: examples/images/ubuntu-22.04\nsize: {ram: 16}\n",
                    "x.yaml",
                    "examples/images/ubuntu-22.04-large",
                )
            ]
        )
    copy = bob.copy("examples/images/ubuntu-22.04-large", "bob/images/big")
    assert copy.rights.owner == "bob" and not copy.rights.public_rights
    assert copy.document["parent"] == "examples/images/ubuntu-22.04"
    assert copy.copied_from == "examples/images/ubuntu-22.04-large@1"
    with pytest.raises(NotFound):
        seeded("carol").show("bob/images/big")  # alice, the first user, is an admin
    resolved = bob.resolve("bob/images/big")
    assert resolved.document["size"]["ram"] == 8


def test_group_rights_apply_to_members_only(
    seeded: Callable[[str], CatalogService], store_uow: Callable[[], UnitOfWork]
) -> None:
    alice = seeded("alice")  # the first user of the store is its admin
    people = IdentityService(store_uow, cheap_hasher())
    people.add_user("alice", "bob")
    people.add_user("alice", "carol")
    people.add_group("alice", "team", ["bob"])
    alice.import_files([image()])
    for name in ("alice/images/mine", "examples/clouds/local", "examples/catalogs/local"):
        alice.share(
            name,
            group="team",
            group_rights=frozenset({Right.EDIT}),
            public_rights=frozenset(),
        )
    seeded("bob").import_files([image(cpu=3)])
    assert seeded("bob").show("alice/images/mine").version == 2
    with pytest.raises(NotFound):
        seeded("carol").show("alice/images/mine")


def test_only_the_owner_shares(seeded: Callable[[str], CatalogService]) -> None:
    seeded("alice").import_files([image()])
    seeded("alice").share(
        "alice/images/mine",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW, Right.EDIT}),
    )
    with pytest.raises(PermissionDenied, match="only the owner"):
        seeded("bob").share(
            "alice/images/mine",
            group=None,
            group_rights=frozenset(),
            public_rights=frozenset(Right),
        )


def test_a_refused_action_changes_nothing(seeded: Callable[[str], CatalogService]) -> None:
    alice, bob = seeded("alice"), seeded("bob")
    alice.import_files([image()])
    with pytest.raises(PermissionDenied):
        bob.import_files([image("bob/images/new"), image(cpu=8)])
    with pytest.raises(NotFound):
        bob.show("bob/images/new")
    assert alice.show("alice/images/mine").version == 1


def test_copy_refuses_an_existing_name(seeded: Callable[[str], CatalogService]) -> None:
    with pytest.raises(Conflict):
        seeded("alice").copy("examples/images/debian-12", "examples/images/ubuntu-22.04")


def test_unknown_versions_and_modules_are_not_found(
    seeded: Callable[[str], CatalogService],
) -> None:
    with pytest.raises(NotFound, match="has no version 9"):
        seeded("alice").show("examples/images/debian-12@9")
    with pytest.raises(NotFound, match="does not exist"):
        seeded("alice").show("examples/images/nothing")


def test_size_table_covers_every_cloud(seeded: Callable[[str], CatalogService]) -> None:
    from slipway.domain.sizes import Size

    rows = seeded("alice").size_table(Size(cpu=2, ram=4))
    assert {r.cloud.name: r.pick.flavor.name for r in rows if r.pick} == {
        "aws-eu-west-1": "t3.medium",
        "exoscale-ch-dk": "Medium",
        "exoscale-ch-gva": "Medium",
        "local": "large",
        "ultimum": "Standard Plus",
    }


def test_listing_by_cloud_follows_inherited_native_images(
    seeded: Callable[[str], CatalogService], tmp_path: Path
) -> None:
    alice = seeded("alice")
    alice.import_files(
        [
            load_text(
                "kind: image\nparent: examples/images/debian-12\n", "k.yaml", "alice/images/kid"
            )
        ]
    )
    names = [v.name for v, _ in alice.list_modules(cloud="local")]
    assert "alice/images/kid" in names and "examples/apps/nginx" in names
