"""Hostile YAML is cheap to refuse: alias bombs, recursive anchors, deep
nesting and absurd numbers are errors naming the file and the key — exit 2
on the command line, 422 from the API — never a hang, a crash or a 500."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from slipway.adapters.definitions.loader import load_text
from slipway.errors import DefinitionError
from tests.conftest import WebWorld
from tests.security.conftest import Cli, problem


def laughs(levels: int) -> str:
    """The "billion laughs": each level lists the one before nine times, so
    a few hundred bytes stand for 9**levels values."""
    lines = ["kind: image", 'l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ",".join([f"*l{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


BILLION_LAUGHS = laughs(10)  # 3.5 billion values


def refusal(text: str) -> DefinitionError:
    with pytest.raises(DefinitionError) as caught:
        load_text(text, "bomb.yaml", "mallory/bomb")
    return caught.value


def test_a_billion_laughs_is_refused_with_bounded_memory() -> None:
    assert len(BILLION_LAUGHS) < 1000
    tracemalloc.start()
    try:
        error = refusal(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert "more than 50000 values once its aliases are expanded" in error.problem
    assert (error.location.file, error.location.key, error.location.line) == ("bomb.yaml", "l9", 11)
    assert peak < 5 * 2**20


def test_a_small_alias_bomb_is_refused_too() -> None:
    """Big enough to be slow (half a million values), small enough to finish."""
    assert "values once its aliases are expanded" in refusal(laughs(6)).problem


def test_aliases_within_the_budget_still_work() -> None:
    text = (
        "kind: image\n"
        "native:\n"
        "  local: &native {id: debian-12-minimal, login_user: debian}\n"
        "  other: *native\n"
        "  third: {<<: *native, id: other-image}\n"
    )
    loaded = load_text(text, "ok.yaml", "alice/ok")
    assert loaded.document["native"] == {
        "local": {"id": "debian-12-minimal", "login_user": "debian"},
        "other": {"id": "debian-12-minimal", "login_user": "debian"},
        "third": {"id": "other-image", "login_user": "debian"},
    }
    assert loaded.line_of("native", "third", "id") == 5


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        ("kind: image\ndescription: &a [*a]\n", "description.0", 2),
        ("kind: image\nsize: &a {cpu: *a}\n", "size.cpu", 2),
        (
            "kind: image\nnative:\n  local: &a\n    id: [1, {deeper: *a}]\n",
            "native.local.id.1.deeper",
            3,
        ),
        ("kind: image\nsize: &a {<<: *a}\n", "size.<<", 2),
    ],
)
def test_a_recursive_anchor_is_refused_naming_the_key(text: str, key: str, line: int) -> None:
    error = refusal(text)
    assert "recursive anchor" in error.problem
    assert (error.location.key, error.location.line) == (key, line)


@pytest.mark.parametrize("levels", [40, 900])
def test_deep_nesting_is_refused(levels: int) -> None:
    error = refusal("kind: image\ndescription: " + "[" * levels + "]" * levels + "\n")
    assert "nested more than 32 levels deep" in error.problem
    assert error.location.key is not None and error.location.key.startswith("description.0")


def test_nesting_through_an_alias_counts_the_levels_it_brings() -> None:
    deep = "[" * 20 + "]" * 20
    error = refusal(f"kind: image\nx: &deep {deep}\ndescription: {'[' * 15}*deep{']' * 15}\n")
    assert "nested more than 32 levels deep" in error.problem


@pytest.mark.parametrize(
    ("document", "key", "words"),
    [
        ("size: {cpu: " + "9" * 5000 + "}", "size.cpu", "a number of more than 32 characters"),
        ("size: {cpu: 99999999999999999999}", "size.cpu", "less than or equal to 1024"),
        ("size: {ram: .inf}", "size.ram", "expected a finite number"),
        ("size: {ram: -.inf}", "size.ram", "expected a finite number"),
        ("size: {disk: .nan}", "size.disk", "expected a finite number"),
        ("size: {ram: 1.0e+999}", "size.ram", "expected a finite number"),
        ("size: {ram: 1e999}", "size.ram", "expected a number"),
    ],
)
def test_absurd_numbers_are_refused_naming_the_key(document: str, key: str, words: str) -> None:
    error = refusal(f"kind: image\n{document}\n")
    assert error.location.key == key and words in error.problem


def test_an_infinite_price_is_refused() -> None:
    error = refusal("kind: catalog\nflavors: [{name: a, cpu: 1, ram: 1, price: .inf}]\n")
    assert (error.location.key, error.problem) == (
        "flavors.0.price",
        "expected a finite number, got inf",
    )


def test_a_key_that_is_a_list_is_refused() -> None:
    error = refusal("kind: image\n? &k [*k]\n: x\n")
    assert "a key must be text" in error.problem


# -- through the API and the command line -------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [
        (BILLION_LAUGHS, "l9"),
        ("kind: image\ndescription: &a [*a]\n", "description.0"),
        ("kind: image\nsize: {cpu: " + "9" * 5000 + "}\n", "size.cpu"),
        ("kind: catalog\nflavors: [{name: a, cpu: 1, ram: 1, price: .inf}]\n", "flavors.0.price"),
    ],
)
def test_the_api_answers_422_naming_the_key(
    client: TestClient, web_world: WebWorld, text: str, path: str
) -> None:
    for dry_run in ("true", "false"):
        response = client.post(
            f"/api/modules?name=alice/bomb&dry_run={dry_run}",
            content=text,
            headers=web_world.headers("alice"),
        )
        body = problem(response, 422)
        assert [e["path"] for e in body["errors"]] == [path]
    assert (
        client.get("/api/modules/alice/bomb", headers=web_world.headers("alice")).status_code == 404
    )


def test_an_infinite_price_is_422_on_postgresql_too(
    sql_client: TestClient, sql_world: WebWorld
) -> None:
    response = sql_client.post(
        "/api/modules?name=alice/prices",
        content="kind: catalog\nflavors: [{name: a, cpu: 1, ram: 1, price: .inf}]\n",
        headers=sql_world.headers("alice"),
    )
    assert problem(response, 422)["errors"][0]["path"] == "flavors.0.price"


@pytest.mark.parametrize("command", ["validate", "import"])
@pytest.mark.parametrize(
    ("text", "where"),
    [
        (BILLION_LAUGHS, "bomb.yaml:11: l9: the document holds more than 50000 values"),
        ("kind: image\ndescription: &a [*a]\n", "bomb.yaml:2: description.0: an alias refers"),
        ("kind: image\nsize: {ram: .inf}\n", "bomb.yaml:2: size.ram: expected a finite number"),
    ],
)
def test_the_command_line_exits_2_naming_file_and_key(
    cli: Cli, tmp_path: Path, command: str, text: str, where: str
) -> None:
    (tmp_path / "bomb.yaml").write_text(text)
    done = cli(command, "bomb.yaml")
    assert done.code == 2, done
    assert where in done.err and "Traceback" not in done.err
