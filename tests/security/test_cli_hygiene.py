"""The command line is scriptable and says what it means: token commands
speak JSON like every other data command, and every option's help text is
shown whole."""

from __future__ import annotations

import json
import re

import click
import typer.main

from slipway.entrypoints.cli.app import app
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


def _commands(
    group: click.Command, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], click.Command]]:
    found = [(path, group)]
    if isinstance(group, click.Group):
        for name, command in sorted(group.commands.items()):
            found += _commands(command, (*path, name))
    return found


def _flat(text: str) -> str:
    """Help as words: without Rich's boxes, wrapping and escapes."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _shown(help_text: str) -> str:
    return _flat(help_text.replace("\\[", "["))


def test_every_option_help_is_shown_whole(cli: Cli) -> None:
    """Rich read "[env SLIPWAY_DATA_DIR]" as a style tag and dropped it."""
    root = typer.main.get_command(app)
    missing = []
    for path, command in _commands(root):
        helped = [p for p in command.params if getattr(p, "help", None) and "[" in p.help]
        if not helped:
            continue
        shown = _flat(cli(*path, "--help").out)
        missing += [(" ".join(path), p.name) for p in helped if _shown(p.help) not in shown]
    assert missing == [], missing


def test_the_global_options_name_their_environment_variables(cli: Cli) -> None:
    shown = _flat(cli("--help").out)
    assert "Data folder [env SLIPWAY_DATA_DIR]." in shown
    assert "Act as this user [env SLIPWAY_USER]." in shown
