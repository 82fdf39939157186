"""The same rules through the real ``slipway`` command: a module bob may not
view reads as missing (exit 3), a reference to it is refused (exit 4), and
so is a name in someone else's namespace."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli_catalog import Cli


@pytest.fixture
def alice(tmp_path: Path) -> Cli:
    """The store's first user (its admin), with a private image of her own."""
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "plans.yaml").write_text("kind: image\ndescription: secret\n")
    cli = Cli(tmp_path / "data", tmp_path, user="alice")
    cli("import", "alice")
    return cli


def test_a_private_module_reads_as_a_missing_one(alice: Cli, tmp_path: Path) -> None:
    bob = Cli(tmp_path / "data", tmp_path, user="bob")
    hidden = bob("show", "alice/plans", code=3).stderr
    missing = bob("show", "alice/nothing", code=3).stderr
    assert hidden == missing.replace("alice/nothing", "alice/plans")
    assert "does not exist" in hidden
    bob("history", "alice/plans", code=3)


def test_a_reference_or_a_name_of_alices_is_refused_with_exit_4(alice: Cli, tmp_path: Path) -> None:
    bob = Cli(tmp_path / "data", tmp_path, user="bob")
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "child.yaml").write_text("kind: image\nparent: alice/plans\n")
    refused = bob("import", "bob", code=4).stderr
    assert "parent: parent 'alice/plans' names no module bob may view" in refused
    (tmp_path / "alice" / "plans.yaml").write_text("kind: image\ndescription: mine now\n")
    taken = bob("import", "alice", code=4).stderr
    assert "bob cannot create alice/plans" in taken
    assert alice.json("show", "alice/plans")["version"] == 1  # type: ignore[index]
