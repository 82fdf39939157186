"""The data folder and the databases in it are created readable by
Slipway's user only: they hold password and token hashes, sealed run keys
and every user's definitions."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.conftest import Cli


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The umask most accounts have, which leaves new files world-readable."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_folder_is_0700_and_the_store_0600(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "web.yaml").write_text("kind: image\ndescription: x\n")
    assert cli("import", "web.yaml").code == 0
    data = tmp_path / "data"
    assert mode(data) == 0o700
    databases = sorted(p.name for p in data.glob("slipway.db*"))
    assert "slipway.db" in databases
    assert {p: oct(mode(data / p)) for p in databases} == dict.fromkeys(databases, "0o600")


def test_the_queue_database_is_0600(cli: Cli, tmp_path: Path) -> None:
    assert cli("runs").code == 0
    data = tmp_path / "data"
    assert mode(data) == 0o700
    queue = sorted(data.glob("queue.db*"))
    assert queue and all(mode(p) == 0o600 for p in queue), [(p.name, oct(mode(p))) for p in queue]


def test_a_store_elsewhere_gets_a_private_folder_too(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "elsewhere" / "catalog" / "store.db"
    monkeypatch.setenv("SLIPWAY_DATABASE_URL", f"sqlite:///{store}")
    assert cli("images", "list").code == 0
    assert mode(store.parent) == 0o700 and mode(store) == 0o600
    assert mode(tmp_path / "data") == 0o700


def test_an_existing_folder_keeps_its_mode(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o750)
    assert cli("images", "list").code == 0
    assert mode(tmp_path / "data") == 0o750
    assert mode(tmp_path / "data" / "slipway.db") == 0o600
