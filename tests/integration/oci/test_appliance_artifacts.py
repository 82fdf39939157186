"""``slipway appliance push`` and ``pull`` against a real registry: a
version's stored image becomes an OCI artifact, the VO's next list names it
by its manifest digest (so the signature covers it), and a pull checks the
SHA-512 the list gives."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from slipway.adapters.imagelists import parse_image_list
from slipway.services.marketplace import OCI_KEY
from tests.market_world import VO, MarketWorld, stored_image
from tests.oci_registry import LocalRegistry

SLIPWAY = [sys.executable, "-m", "slipway"]


@pytest.fixture
def world(tmp_path: Path) -> MarketWorld:
    world = MarketWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}")
    stored_image(world.data_dir, "web-1")
    made = world.call("alice", "POST", "/api/appliances/alice/web/versions", json={
        "version": "1.0", "files": [{"image": "web-1"}], "appliance": {"title": "Web"},
        "details": {"os_name": "Debian", "os_version": "12"},
    })  # fmt: skip
    assert made.status_code == 201, made.text
    return world


def cli(world: MarketWorld, user: str, *args: str) -> subprocess.CompletedProcess[str]:
    settings = world.settings
    env = {
        **os.environ,
        "SLIPWAY_CONFIG": str(world.root / "config.toml"),
        "SLIPWAY_DATA_DIR": settings.data_dir,
        "SLIPWAY_DATABASE_URL": settings.database_url,
        "SLIPWAY_PUBLIC_URL": settings.public_url,
        "SLIPWAY_USER": user,
        "SLIPWAY_FETCH_PRIVATE_ADDRESSES": "yes",  # the registry is on loopback
    }
    return subprocess.run(
        [*SLIPWAY, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_pushed_version_is_named_by_the_list_and_pulls_back(
    world: MarketWorld, registry: LocalRegistry, tmp_path: Path
) -> None:
    target = f"oci://{registry.host}/vo/web:1.0"
    pushed = cli(world, "alice", "appliance", "push", "alice/web@1.0", target, "-o", "json")
    assert pushed.returncode == 0, pushed.stderr
    reference = json.loads(pushed.stdout)["reference"]
    assert reference.startswith(f"oci://{registry.host}/vo/web:1.0@sha256:")
    world.market("alice").share("alice/web", public_rights=frozenset({_view()}))
    world.market("admin").create_vo(VO, "bob")
    world.market("bob").endorse(VO, "alice/web@1.0")
    (image,) = parse_image_list(world.market("bob").publish(VO).document).images
    assert dict(image.extras)[OCI_KEY] == reference
    shown = world.call("alice", "GET", "/api/appliances/alice/web").json()
    assert shown["versions"][0]["files"][0]["artifacts"] == [reference]

    pulled = cli(world, "mallory", "appliance", "pull", reference, "--to", str(tmp_path / "in"),
                 "--sha512", image.sha512, "-o", "json")  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    (got,) = json.loads(pulled.stdout)["files"]
    assert got["sha512"] == image.sha512
    assert (
        Path(got["path"]).read_bytes() == (world.data_dir / "images" / "web-1.qcow2").read_bytes()
    )

    wrong = cli(world, "mallory", "appliance", "pull", reference, "--to", str(tmp_path / "w"),
                "--sha512", "0" * 128)  # fmt: skip
    assert wrong.returncode == 5 and "SHA-512" in wrong.stderr
    assert list((tmp_path / "w").iterdir()) == []


def test_only_an_editor_pushes(world: MarketWorld, registry: LocalRegistry) -> None:
    target = f"oci://{registry.host}/mallory/web:1"
    hidden = cli(world, "mallory", "appliance", "push", "alice/web@1.0", target)
    assert hidden.returncode == 3  # alice's private appliance answers as missing
    world.market("alice").share("alice/web", public_rights=frozenset({_view()}))
    refused = cli(world, "mallory", "appliance", "push", "alice/web@1.0", target)
    assert refused.returncode == 4 and "may not edit" in refused.stderr
    assert world.market("alice").appliance("alice/web").versions[0].files[0].artifacts == ()


def _view() -> object:
    from slipway.domain.modules import Right

    return Right.VIEW


def test_the_api_pushes_only_where_the_operator_allows(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    target = f"oci://{registry.host}/vo/api:1.0"
    body = {"version": "1.0", "target": target}
    for fetch_private, expected in ((False, 422), (True, 201)):
        folder = tmp_path / str(fetch_private)
        folder.mkdir()
        world = MarketWorld(
            folder, f"sqlite:///{folder / 'slipway.db'}", fetch_private=fetch_private
        )
        stored_image(world.data_dir, "web-1")
        world.call("alice", "POST", "/api/appliances/alice/web/versions", json={
            "version": "1.0", "files": [{"image": "web-1"}], "appliance": {"title": "Web"}
        })  # fmt: skip
        refused = world.call("mallory", "POST", "/api/appliances/alice/web/artifacts", json=body)
        assert refused.status_code == 404  # a private appliance answers as missing
        answer = world.call("alice", "POST", "/api/appliances/alice/web/artifacts", json=body)
        assert answer.status_code == expected, answer.text
        artifacts = world.market("alice").appliance("alice/web").versions[0].files[0].artifacts
        if expected == 422:
            assert "own network" in answer.json()["detail"] and artifacts == ()
        else:
            assert artifacts == (answer.json()["reference"],)
            assert answer.json()["uploaded"] is True
