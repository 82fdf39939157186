"""Numbers too big for the store and text it cannot hold are bad input, not
server errors: 422 from the API and the dashboard, exit 2 from the command
line — on SQLite and PostgreSQL, where a version is a 32-bit integer and a
text cannot contain NUL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.conftest import WebWorld
from tests.security.conftest import Cli, problem

DEBIAN = "examples/images/debian-12"
HUGE = "99999999999999999999"  # more than 64 bits
INT64_MAX = "9223372036854775807"


@pytest.mark.parametrize(
    ("method", "url", "body", "path"),
    [
        ("GET", f"/api/modules/{DEBIAN}@{HUGE}", None, "path.name"),
        ("GET", f"/api/modules/{DEBIAN}@2147483648", None, "path.name"),
        ("GET", f"/api/modules/{DEBIAN}@{HUGE}/-/resolved", None, "path.name"),
        ("POST", f"/api/modules/{DEBIAN}@{HUGE}/-/copy", {"destination": "alice/x"}, "path.name"),
        ("POST", "/api/runs", {"module": f"{DEBIAN}@{HUGE}", "cloud": "local"}, None),
        ("GET", f"/api/modules?offset={INT64_MAX}", None, "query.offset"),
        ("GET", f"/api/modules?limit={INT64_MAX}", None, "query.limit"),
        ("GET", f"/api/runs?offset={INT64_MAX}", None, "query.offset"),
        ("GET", f"/api/modules/{DEBIAN}/-/diff?from=1&to={INT64_MAX}", None, "query.to"),
        ("DELETE", f"/api/tokens/{INT64_MAX}", None, "path.token_id"),
        ("GET", f"/api/sizes?cpu={INT64_MAX}", None, "query.cpu"),
        ("GET", f"/catalog?page={INT64_MAX}", None, "query.page"),
        ("GET", f"/runs?page={INT64_MAX}", None, "query.page"),
        ("GET", f"/images/{DEBIAN}@{HUGE}", None, "path.name"),
        ("GET", f"/images/{DEBIAN}/-/diff?from=1&to={INT64_MAX}", None, "query.to"),
        ("GET", "/api/runs/%00", None, "path.run_id"),
        ("POST", "/api/runs/%00/terminate", None, "path.run_id"),
        ("GET", "/api/runs/%00/events", None, "path.run_id"),
        ("GET", "/runs/%00", None, "path.run_id"),
        ("GET", "/catalog?q=%00", None, "query.q"),
        ("GET", "/catalog?owner=%00", None, "query.owner"),
    ],
)
def test_out_of_range_parameters_are_422_not_500(
    sql_client: TestClient,
    sql_world: WebWorld,
    method: str,
    url: str,
    body: object,
    path: str | None,
) -> None:
    response = sql_client.request(method, url, json=body, headers=sql_world.headers("alice"))
    found = problem(response, 422)
    if path is not None:
        assert [e["path"] for e in found["errors"]] == [path], found


@pytest.mark.parametrize(
    ("document", "path"),
    [
        (f"kind: image\nparent: {DEBIAN}@{HUGE}\n", "parent"),
        (f"kind: component\nimage: {DEBIAN}@{HUGE}\n", "image"),
        ("kind: image\nos: {distribution: " + "d" * 150 + "}\n", "os.distribution"),
    ],
)
def test_definitions_that_the_store_could_not_hold_are_422(
    sql_client: TestClient, sql_world: WebWorld, document: str, path: str
) -> None:
    response = sql_client.post(
        "/api/modules?name=alice/big", content=document, headers=sql_world.headers("alice")
    )
    assert [e["path"] for e in problem(response, 422)["errors"]] == [path]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["show", f"{DEBIAN}@{HUGE}"], "the version after @ must be a number from 1 to 2147483647"),
        (["show", DEBIAN, "--version", HUGE], "--version"),
        (["show", "not a name", "--version", "2"], "is not a module name"),
        (["history", f"{DEBIAN}@{HUGE}"], "the version after @"),
        (["diff", f"{DEBIAN}@{HUGE}", DEBIAN], "the version after @"),
        (["copy", f"{DEBIAN}@{HUGE}", "alice/x"], "the version after @"),
        (["runs", "--offset", INT64_MAX], "--offset"),
        (["token", "revoke", INT64_MAX], "token_id"),
    ],
)
def test_the_command_line_exits_2(cli: Cli, args: list[str], words: str) -> None:
    done = cli(*args)
    assert done.code == 2, done
    assert words in done.err and "Traceback" not in done.err
