"""A run's private key never leaves the server: the API's JSON and the
dashboard's pages show the run, never its sealed key, whatever the store.

The tests' vault seals nothing, so the sealed key is the private key itself:
neither may appear in anything a client is sent."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import WebWorld
from tests.integration.test_api import call
from tests.integration.test_api_runs import drive
from tests.integration.test_dashboard_pages import login

DEPLOY = {"module": "examples/apps/nginx", "cloud": "local"}


def everything_shown_of_a_run(client: TestClient, world: WebWorld) -> tuple[str, list[str]]:
    """(the run's sealed key, every page and document that shows the run, from
    its deploy to its end)."""
    created = call(client, world, "alice", "POST", "/api/runs", json=DEPLOY)
    run_id = created.json()["id"]
    drive(world, run_id)
    responses = [created]
    responses += [call(client, world, "alice", "GET", f"/api/runs{u}") for u in ("", f"/{run_id}")]
    login(client, "alice")
    responses += [client.get("/runs"), client.get(f"/runs/{run_id}")]
    responses.append(call(client, world, "alice", "POST", f"/api/runs/{run_id}/terminate"))
    drive(world, run_id)
    # The event stream ends with the run.
    responses.append(call(client, world, "alice", "GET", f"/api/runs/{run_id}/events"))
    assert all(r.status_code < 300 for r in responses), [r.text for r in responses]
    assert world.services.runs is not None
    sealed = world.services.runs("alice").get(run_id).target.sealed_key
    return sealed, [r.text for r in responses]


def assert_no_key_in(sealed: str, shown: list[str]) -> None:
    assert "PRIVATE KEY" in sealed  # what the tests' vault makes of it
    for text in shown:
        assert sealed not in text
        assert "sealed_key" not in text and "PRIVATE KEY" not in text


def test_the_api_and_the_dashboard_never_show_a_runs_key(
    client: TestClient, web_world: WebWorld
) -> None:
    assert_no_key_in(*everything_shown_of_a_run(client, web_world))


def test_the_api_and_the_dashboard_never_show_a_runs_key_from_a_database(
    sql_client: TestClient, sql_world: WebWorld
) -> None:
    assert_no_key_in(*everything_shown_of_a_run(sql_client, sql_world))
