"""Control characters and terminal escapes are refused where text comes in:
names, login users, distributions, descriptions and recipes of definitions,
token and group names, import comments. Multi-line text may hold tabs and
newlines, nothing else. The error names the field; nothing is saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from slipway.adapters.definitions.loader import load_text
from slipway.domain.text import control_character, printable
from slipway.errors import DefinitionError
from tests.conftest import WebWorld
from tests.security.conftest import Cli, problem

ESC = "\\e[31m"  # as YAML writes ESC in a double-quoted string

ONE_LINE_FIELDS = [
    (f'kind: image\nlogin_user: "debian{ESC}"\n', "login_user"),
    (f'kind: image\nos: {{distribution: "deb{ESC}"}}\n', "os.distribution"),
    (f'kind: image\nos: {{version: "12{ESC}"}}\n', "os.version"),
    (f'kind: image\nparent: "x{ESC}"\n', "parent"),
    (f'kind: image\nnative: {{local: {{id: "img{ESC}"}}}}\n', "native.local.id"),
    (
        f'kind: image\nnative: {{local: {{id: x, login_user: "u{ESC}"}}}}\n',
        "native.local.login_user",
    ),
    (
        f'kind: image\nclouds: {{local: {{instance_type: "t{ESC}"}}}}\n',
        "clouds.local.instance_type",
    ),
    (f'kind: image\nsecurity_groups: ["web{ESC}"]\n', "security_groups.0"),
    (f'kind: image\ndescription: "tab\\tand newline\\n ok, but not{ESC}"\n', "description"),
    ('kind: image\ndescription: "a C1 CSI \\x9b31m"\n', "description"),
    ('kind: image\ndescription: "a bell \\a"\n', "description"),
    (
        f'kind: component\nimage: x\nrecipes: {{post_install: "echo hi{ESC}"}}\n',
        "recipes.post_install",
    ),
    (f'kind: component\nimage: x\nrecipes: {{packages: ["nginx{ESC}"]}}\n', "recipes.packages.0"),
    (f'kind: component\nimage: x\nports: [{{port: 80, name: "http{ESC}"}}]\n', "ports.0.name"),
    (f'kind: catalog\nflavors: [{{name: "big{ESC}", cpu: 1, ram: 1}}]\n', "flavors.0.name"),
    (f'kind: catalog\nsource: "aws{ESC}"\nflavors: [{{name: a, cpu: 1, ram: 1}}]\n', "source"),
]


@pytest.mark.parametrize(("text", "key"), ONE_LINE_FIELDS)
def test_a_control_character_in_a_definition_is_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        load_text(text, "evil.yaml", "mallory/evil")
    assert caught.value.location.key == key
    assert "the control character U+" in caught.value.problem


def test_a_control_character_in_a_key_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_text('kind: image\nnative: {"lo\\ecal": {id: x}}\n', "evil.yaml", "mallory/evil")
    assert "U+001B (ESC)" in caught.value.problem


def test_multi_line_text_keeps_its_tabs_and_newlines() -> None:
    text = (
        'kind: component\nimage: x\ndescription: "a\\tb\\nc"\n'
        "recipes:\n  post_install: |\n    a\n    \tb\n"
    )
    loaded = load_text(text, "fine.yaml", "alice/fine")
    assert loaded.document["description"] == "a\tb\nc"
    assert loaded.document["recipes"]["post_install"] == "a\n\tb\n"


def test_control_characters_are_found_and_shown_as_escapes() -> None:
    assert control_character("plain [red]text[/]") is None
    assert control_character("a\tb") == "U+0009 (tab)"
    assert control_character("a\tb\nc", multi_line=True) is None
    assert control_character("x\x1b[2J", multi_line=True) == "U+001B (ESC)"
    assert control_character("\x9b") == "U+009B"
    assert printable("a\x1b[31mb\tc\nd\x9b\x7f") == "a\\x1b[31mb\tc\nd\\x9b\\x7f"


def test_bidirectional_controls_are_refused_and_shown_as_escapes() -> None:
    # "Trojan source": the override makes the text display in another order.
    assert control_character("invoice\u202etxt.sh") == "U+202E (right-to-left override)"
    assert control_character("echo ok\u2066 # hidden\u2069", multi_line=True) == "U+2066"
    assert control_character("é ü 日本 emoji 🙂") is None
    assert printable("a\u202eb") == "a\\u202eb"
    with pytest.raises(DefinitionError):
        load_text('kind: image\nlogin_user: "deb\\u202eian"\n', "bidi.yaml", "alice/bidi")


# -- through the API and the command line -------------------------------------


def test_the_api_refuses_a_definition_with_an_escape(
    client: TestClient, web_world: WebWorld
) -> None:
    response = client.post(
        "/api/modules?name=alice/evil",
        content=f'kind: image\nlogin_user: "root{ESC}"\n',
        headers=web_world.headers("alice"),
    )
    assert [e["path"] for e in problem(response, 422)["errors"]] == ["login_user"]
    assert (
        client.get("/api/modules/alice/evil", headers=web_world.headers("alice")).status_code == 404
    )


@pytest.mark.parametrize(
    ("user", "method", "url", "kwargs", "path"),
    [
        ("alice", "POST", "/api/tokens", {"json": {"name": "ci\u001b[2J"}}, "name"),
        ("admin", "POST", "/api/groups", {"json": {"name": "ops\u001b]0;pwned\u0007"}}, "name"),
        ("admin", "POST", "/api/groups", {"json": {"name": "ops\u009b2J"}}, "name"),
        (
            "alice",
            "POST",
            "/api/modules?name=alice/c&comment=%1b%5b2J",
            {"content": "kind: image\n"},
            "comment",
        ),
    ],
)
def test_the_api_refuses_escapes_in_names_and_comments(
    client: TestClient,
    web_world: WebWorld,
    user: str,
    method: str,
    url: str,
    kwargs: dict[str, object],
    path: str,
) -> None:
    response = client.request(method, url, headers=web_world.headers(user), **kwargs)  # type: ignore[arg-type]
    body = problem(response, 422)
    assert [e["path"] for e in body["errors"]] == [path]
    assert "control character" in body["detail"]
    tokens = client.get("/api/tokens", headers=web_world.headers("alice")).json()
    assert [t["name"] for t in tokens] == ["tests"]


def test_a_comment_may_span_lines(client: TestClient, web_world: WebWorld) -> None:
    response = client.post(
        "/api/modules?name=alice/c&comment=first%0A%09second",
        content="kind: image\n",
        headers=web_world.headers("alice"),
    )
    assert response.status_code == 201, response.text


def test_the_command_line_refuses_them_with_exit_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "evil.yaml").write_text(f'kind: image\nos: {{distribution: "deb{ESC}"}}\n')
    done = cli("validate", "evil.yaml")
    assert done.code == 2, done
    assert "evil.yaml:2: os.distribution: the control character U+001B (ESC)" in done.err
    assert cli("group", "add", "ops\x1b[2J").code == 2
    assert cli("token", "create", "--name", "ci\x1b[2J").code == 2
