"""A definition never configures the server: a user's cloud definition cannot
name a program, a folder or an endpoint, only admins define or copy clouds,
and a local native image id can only name an image store entry — at import
and again at deploy."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_text
from slipway.connectors.local import connect
from slipway.domain.machines import MachineSpec
from slipway.domain.modules import Right
from slipway.errors import DefinitionError, InputError, PermissionDenied
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService

EVIL_CLOUD = """\
kind: cloud
description: runs the server's user's programs
driver: local
catalog: examples/catalogs/local
endpoint: {qemu: /tmp/evil.sh}
"""

QUIET_CLOUD = """\
kind: cloud
description: a cloud bob would like to add
driver: local
catalog: examples/catalogs/local
"""


@pytest.fixture
def alice(
    service: Callable[[str], CatalogService],
    people: IdentityService,
    examples: list[LoadedDefinition],
) -> CatalogService:
    """The store's first user, so its admin, with the examples imported."""
    first = service("alice")
    first.import_files(examples)
    people.add_user("alice", "bob")
    # bob may use the local catalog: what stops him is that clouds are an admin's.
    first.share("examples/catalogs/local", group=None, group_rights=frozenset(),
                public_rights=frozenset({Right.VIEW}))  # fmt: skip
    return first


def test_a_cloud_definition_naming_a_program_is_refused() -> None:
    """Refused as it is read, whoever sends it: not even an admin's definition
    configures the server."""
    with pytest.raises(DefinitionError, match="'endpoint' is not allowed") as refused:
        load_text(EVIL_CLOUD, "bob/clouds/evil.yaml", "bob/clouds/evil")
    assert "operator" in str(refused.value) and "/tmp/evil.sh" not in str(refused.value)


def test_only_an_admin_defines_a_cloud(
    alice: CatalogService, service: Callable[[str], CatalogService]
) -> None:
    cloud = load_text(QUIET_CLOUD.replace("kind: cloud", "kind: cloud\nname: bobs"),
                      "bob/clouds/bobs.yaml", "bob/clouds/bobs")  # fmt: skip
    with pytest.raises(PermissionDenied, match="admin"):
        service("bob").import_files([cloud])
    assert "bobs" not in {c.name for c, _ in alice.clouds()}
    alice.import_files([cloud])
    assert "bobs" in {c.name for c, _ in alice.clouds()}


def test_copying_a_cloud_is_refused_to_a_user(
    alice: CatalogService, service: Callable[[str], CatalogService]
) -> None:
    """A copy would define the same cloud name twice: every user's deploys would break."""
    alice.share("examples/clouds/local", group=None, group_rights=frozenset(),
                public_rights=frozenset({Right.VIEW}))  # fmt: skip
    with pytest.raises(PermissionDenied, match="admin"):
        service("bob").copy("examples/clouds/local", "bob/local")
    assert [c.name for c, _ in alice.clouds()].count("local") == 1


@pytest.mark.parametrize("image_id", ["/etc/passwd", "../../vault.key", "..", "a/b"])
def test_a_local_machine_from_a_path_is_refused_at_deploy(tmp_path: Path, image_id: str) -> None:
    """Definitions saved before import checked this still cannot reach a file."""
    cloud = connect("local", {"data_dir": tmp_path, "accelerator": "tcg"})
    spec = MachineSpec("m", image_id, "small", 1, 0.5, None, "#cloud-config\n")
    with pytest.raises(InputError, match="not a local image store name"):
        cloud.create_machine(spec)
    assert not (tmp_path / "machines").exists() or not list((tmp_path / "machines").iterdir())
