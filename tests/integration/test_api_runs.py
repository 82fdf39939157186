"""Runs through the REST API and the dashboard, on a fake local cloud: deploy,
list, show, follow, terminate — and who may see what."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.entrypoints.web.pages import RUNS_PER_PAGE
from slipway.services.runner import Runner
from tests.conftest import WebWorld
from tests.integration.test_api import call, problem
from tests.integration.test_dashboard_pages import login
from tests.unit.test_runs import FakeProber

DEBIAN = {"module": "examples/images/debian-12", "cloud": "local"}


@pytest.fixture
def world(web_world: WebWorld) -> WebWorld:
    return web_world


@pytest.fixture
def client(world: WebWorld) -> Iterator[TestClient]:
    with TestClient(world.app) as test_client:
        yield test_client


def drive(world: WebWorld, run_id: str) -> None:
    """What a worker would do: step the run until it rests."""
    runner = Runner(world.uow, world.connectors, FakeProber(), world.vault, "test")
    for _ in range(40):
        if runner.advance(run_id) is None:
            return


def deploy(client: TestClient, world: WebWorld, user: str = "alice", **body: Any) -> Any:
    response = call(client, world, user, "POST", "/api/runs", json={**DEBIAN, **body})
    assert response.status_code == 201, response.text
    return response.json()


def test_a_deploy_is_queued_and_reaches_ready_with_its_links(
    client: TestClient, world: WebWorld
) -> None:
    run = deploy(client, world)
    assert run["state"] == "pending" and run["flavor"] == "small"
    assert any("slipway_managed" in w for w in run["warnings"])
    assert world.queued == [run["id"]]
    drive(world, run["id"])
    shown = call(client, world, "alice", "GET", f"/api/runs/{run['id']}").json()
    assert shown["state"] == "ready"
    assert shown["parameters"]["url.ssh"].startswith("ssh://debian@")
    assert shown["parameters"]["guest.cpu"] == 2
    assert [e["state"] for e in shown["events"]][-1] == "ready"


def test_runs_are_listed_for_their_owner_only(client: TestClient, world: WebWorld) -> None:
    run = deploy(client, world)
    mine = call(client, world, "alice", "GET", "/api/runs").json()["runs"]
    assert [r["id"] for r in mine] == [run["id"]]
    assert call(client, world, "bob", "GET", "/api/runs").json()["runs"] == []
    problem(call(client, world, "bob", "GET", f"/api/runs/{run['id']}"), 404)
    problem(call(client, world, "bob", "POST", f"/api/runs/{run['id']}/terminate"), 404)
    problem(call(client, world, "anonymous", "GET", "/api/runs"), 401)
    everyone = call(client, world, "admin", "GET", "/api/runs?all=true").json()["runs"]
    assert [r["id"] for r in everyone] == [run["id"]]
    problem(call(client, world, "alice", "GET", "/api/runs?all=true"), 403)


def test_listing_filters_by_state_and_pages(client: TestClient, world: WebWorld) -> None:
    first, second = deploy(client, world), deploy(client, world)
    drive(world, first["id"])
    ready = call(client, world, "alice", "GET", "/api/runs?state=ready").json()["runs"]
    assert [r["id"] for r in ready] == [first["id"]]
    page = call(client, world, "alice", "GET", "/api/runs?limit=1&offset=1").json()["runs"]
    assert len(page) == 1 and page[0]["id"] in (first["id"], second["id"])


def test_listing_filters_by_cloud(client: TestClient, world: WebWorld) -> None:
    local = deploy(client, world)
    with world.uow() as uow:  # the fake world reaches only "local": record one elsewhere
        elsewhere = uow.runs.get(local["id"])
        assert elsewhere is not None
        elsewhere.id, elsewhere.cloud = "elsewhere01", "ultimum"
        uow.runs.add(elsewhere)
        uow.commit()

    def listed(query: str, user: str = "alice") -> list[str]:
        response = call(client, world, user, "GET", f"/api/runs?{query}")
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["runs"]]

    assert listed("cloud=ultimum") == ["elsewhere01"]
    assert listed("cloud=local") == [local["id"]]
    assert listed("cloud=ultimum&state=ready") == []
    assert listed("cloud=ultimum&all=true", "admin") == ["elsewhere01"]
    assert listed("cloud=ultimum", "bob") == []
    problem(call(client, world, "alice", "GET", "/api/runs?cloud=a%00b"), 422)
    problem(call(client, world, "alice", "GET", f"/api/runs?cloud={'x' * 64}"), 422)


def test_terminate_releases_the_machine(client: TestClient, world: WebWorld) -> None:
    run = deploy(client, world)
    drive(world, run["id"])
    assert len(world.cloud.list_machines({})) == 1
    response = call(client, world, "alice", "POST", f"/api/runs/{run['id']}/terminate")
    assert response.status_code == 202 and response.json()["state"] == "terminating"
    drive(world, run["id"])
    assert call(client, world, "alice", "GET", f"/api/runs/{run['id']}").json()["state"] == (
        "terminated"
    )
    assert world.cloud.list_machines({}) == []


def test_the_event_stream_follows_the_run_to_its_end(client: TestClient, world: WebWorld) -> None:
    run = deploy(client, world, keep_running="never")
    drive(world, run["id"])
    response = call(client, world, "alice", "GET", f"/api/runs/{run['id']}/events")
    assert response.headers["content-type"].startswith("text/event-stream")
    states = [
        line.split('"state": "')[1].split('"')[0]
        for line in response.text.splitlines()
        if line.startswith("data:")
    ]
    assert states[0] == "pending" and states[-1] == "terminated"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"cloud": "mars"}, 404, "unknown cloud 'mars'"),
        ({"module": "examples/images/nothing"}, 404, "does not exist"),
        ({"size": {"cpu": 64}}, 422, "closest is xlarge"),
        ({"size": {"cpu": -1}}, 422, "body.size.cpu"),
        ({"flavour": "big"}, 422, "body.flavour"),
        ({"cloud": "ultimum"}, 502, "unreachable"),
    ],
)
def test_bad_deploys_are_refused_and_create_nothing(
    client: TestClient, world: WebWorld, body: dict[str, Any], status: int, words: str
) -> None:
    response = call(client, world, "alice", "POST", "/api/runs", json={**DEBIAN, **body})
    assert response.status_code == status, response.text
    assert words in response.text
    assert call(client, world, "alice", "GET", "/api/runs").json()["runs"] == []
    assert world.cloud.list_machines({}) == []


def test_the_dashboard_shows_runs_and_their_page(client: TestClient, world: WebWorld) -> None:
    run = deploy(client, world)
    drive(world, run["id"])
    csrf = login(client, "alice")
    runs_page = client.get("/runs")
    assert run["id"] in runs_page.text and "ready" in runs_page.text
    run_page = client.get(f"/runs/{run['id']}")
    assert "ssh://debian@" in run_page.text
    assert "The guest sees" in run_page.text and "Terminate" in run_page.text
    client.post(f"/runs/{run['id']}/terminate", data={"csrf_token": csrf})
    assert call(client, world, "alice", "GET", f"/api/runs/{run['id']}").json()["state"] == (
        "terminating"
    )


def test_the_deploy_dialog_starts_a_run_and_opens_its_page(
    client: TestClient, world: WebWorld
) -> None:
    csrf = login(client, "alice")
    response = client.post(
        "/runs", data={"csrf_token": csrf, **DEBIAN}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 204
    run_id = response.headers["HX-Redirect"].removeprefix("/runs/")
    assert call(client, world, "alice", "GET", f"/api/runs/{run_id}").json()["state"] == ("pending")


def test_the_run_page_stops_asking_for_updates_once_the_run_has_ended(
    client: TestClient, world: WebWorld
) -> None:
    run = deploy(client, world)
    drive(world, run["id"])
    csrf = login(client, "alice")
    live = {"HX-Request": "true", "HX-Target": "run-live"}
    ready = client.get(f"/runs/{run['id']}?part=live", headers=live).text
    assert ">Terminate</button>" in ready  # refreshed with the state, so never stale
    client.post(f"/runs/{run['id']}/terminate", data={"csrf_token": csrf})
    # Opened while terminating: the live part polls and replaces itself.
    page = client.get(f"/runs/{run['id']}").text
    assert re.search(r'<div id="run-live"[^>]*hx-trigger="every 2s"[^>]*hx-swap="outerHTML"', page)
    terminating = client.get(f"/runs/{run['id']}?part=live", headers=live).text
    assert 'hx-trigger="every 2s"' in terminating
    assert ">Terminate</button>" not in terminating  # the live part drops the button too
    drive(world, run["id"])
    # Ended: the part that replaces it carries no poll, so the browser stops asking.
    ended = client.get(f"/runs/{run['id']}?part=live", headers=live).text
    assert ended.lstrip().startswith('<div id="run-live"') and "terminated" in ended
    assert "hx-trigger" not in ended


def test_the_runs_dashboard_pages_fifty_runs_at_a_time(client: TestClient, world: WebWorld) -> None:
    ids = [deploy(client, world)["id"] for _ in range(RUNS_PER_PAGE + 1)]
    login(client, "alice")
    first = client.get("/runs").text
    assert sum(run_id in first for run_id in ids) == RUNS_PER_PAGE
    assert ids[0] not in first and "Older →" in first and "Newer" not in first
    second = client.get("/runs?page=2&part=table", headers={"HX-Request": "true"}).text
    assert ids[0] in second and ids[-1] not in second and "← Newer" in second
    assert "Older" not in second
    assert client.get("/runs?page=0").status_code == 422
