"""What the command line prints cannot drive the terminal: text that other
people wrote is shown as it is — Rich markup such as ``[red]`` literally,
control characters as escapes (``\\x1b``) — in tables, messages and errors,
and JSON output escapes every control character."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition
from slipway.adapters.definitions.yaml_source import SourceDocument
from slipway.bootstrap import catalog_service
from slipway.config import load_settings
from slipway.domain.modules import Kind
from tests.conftest import EXAMPLES
from tests.security.conftest import Cli

MARKUP = "[red]x[/red] and [bold]y"


@pytest.fixture
def imported(cli: Cli, tmp_path: Path) -> Cli:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    assert cli("import", "examples").code == 0
    return cli


def stored(name: str, document: dict[str, Any]) -> None:
    """Save ``document`` as the store of an earlier version would have: before
    control characters were refused at import."""
    file = f"{name}.yaml"
    loaded = LoadedDefinition(name, Kind(document["kind"]), document, SourceDocument(file, {}, {}))
    catalog_service(load_settings()).import_files([loaded])


def no_control_characters(text: str) -> None:
    assert not any(0x00 <= ord(c) < 0x20 and c not in "\n\t" for c in text), repr(text)
    assert not any(0x7F <= ord(c) < 0xA0 for c in text), repr(text)


def test_markup_in_a_description_prints_literally(imported: Cli, tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    (tmp_path / "alice" / "web.yaml").write_text(
        f'kind: image\nparent: examples/images/debian-12\ndescription: "{MARKUP}"\n'
    )
    assert imported("import", "alice/web.yaml", "--comment", "[bold]mine").code == 0
    listed = imported("images", "list")
    assert MARKUP in listed.out
    assert "[bold]mine" in imported("history", "alice/web").out
    resolved = imported("show", "alice/web", "--resolved")
    assert MARKUP in resolved.out


def test_a_list_in_a_diff_prints_its_brackets(imported: Cli, tmp_path: Path) -> None:
    (tmp_path / "alice").mkdir()
    image = tmp_path / "alice" / "groups.yaml"
    image.write_text("kind: image\nsecurity_groups: [slipway_managed]\n")
    imported("import", "alice/groups.yaml")
    image.write_text("kind: image\nsecurity_groups: [ssh]\n")
    imported("import", "alice/groups.yaml")
    out = imported("diff", "alice/groups@1", "alice/groups@2").out
    assert "- security_groups: [slipway_managed]" in out
    assert "+ security_groups: [ssh]" in out


def test_a_flavor_named_like_markup_prints_literally(imported: Cli, tmp_path: Path) -> None:
    catalog = tmp_path / "examples" / "catalogs" / "local.yaml"
    catalog.write_text(catalog.read_text().replace("name: tiny", "name: '[red]tiny'", 1))
    assert imported("import", "examples").code == 0, "the catalog changed"
    out = imported("sizes", "list", "--cloud", "local").out
    assert "[red]tiny" in out


def test_escapes_stored_earlier_are_shown_not_obeyed(imported: Cli) -> None:
    stored(
        "alice/old",
        {
            "kind": "image",
            "parent": "examples/images/debian-12",
            "description": "clear\x1b[2J bell\x07 csi\x9b31m",
        },
    )
    listed = imported("images", "list")
    no_control_characters(listed.out)
    assert "clear\\x1b[2J bell\\x07 csi\\x9b31m" in listed.out
    for args in (["show", "alice/old"], ["show", "alice/old", "--resolved"]):
        no_control_characters(imported(*args).out)
    as_json = imported("images", "list", "--output", "json").out
    no_control_characters(as_json)
    assert "clear\\u001b[2J bell\\u0007 csi\\u009b31m" in as_json
    described = {m["name"]: m["description"] for m in json.loads(as_json)}
    assert described["alice/old"] == "clear\x1b[2J bell\x07 csi\x9b31m"


def test_an_error_quoting_the_file_shows_its_escapes(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").write_text('kind: image\n"\\e[2J\\e]0;pwned\\a": 1\n')
    done = cli("validate", "evil.yaml")
    assert done.code == 2
    no_control_characters(done.err)
    assert "\\x1b[2J\\x1b]0;pwned\\x07: unknown key" in done.err


def test_a_name_like_markup_is_shown_in_the_error(cli: Cli) -> None:
    done = cli("show", "[red]x")
    assert done.code == 2
    assert "'[red]x' is not a module name" in done.err
