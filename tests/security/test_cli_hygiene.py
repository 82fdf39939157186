"""The command line is scriptable and says what it means: token commands
speak JSON like every other data command."""

from __future__ import annotations

import json

from tests.security.conftest import Cli


def test_token_create_and_list_speak_json(cli: Cli) -> None:
    created = json.loads(cli("token", "create", "--name", "ci", "--output", "json").out)
    assert created["token"].startswith("slw_")
    assert (created["name"], created["user"]) == ("ci", "alice")
    listed = json.loads(cli("token", "list", "--output", "json").out)
    assert listed == [
        {k: created[k] for k in ("id", "name", "user", "created_at")},
    ]
    assert "token" not in listed[0]
    revoked = json.loads(cli("token", "revoke", str(created["id"]), "-o", "json").out)
    assert revoked == {"revoked": created["id"]}
    assert json.loads(cli("token", "list", "-o", "json").out) == []


def test_token_create_still_prints_the_token_on_its_second_line(cli: Cli) -> None:
    done = cli("token", "create", "--name", "[red]laptop")
    assert done.out.splitlines()[0].startswith("token 1 ([red]laptop) for alice")
    assert done.out.splitlines()[1].startswith("slw_")
