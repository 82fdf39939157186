"""Provider sync from a second, hostile user's side: every subscription and
sync route refuses a non-administrator before it reads or changes anything;
a subscription cannot point the server at its own network or at a CA
directory of the caller's choosing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from slipway import bootstrap
from slipway.errors import InputError
from tests.security.test_rights_matrix import SYNC, routes
from tests.sync_world import SyncWorld, qcow2_bytes

# Every sync route, as mallory would call it.
PROBES = {
    "GET /api/subscriptions": ("GET", "/api/subscriptions", None),
    "POST /api/subscriptions": ("POST", "/api/subscriptions", "body"),
    "GET /api/subscriptions/{name}": ("GET", "/api/subscriptions/site", None),
    "DELETE /api/subscriptions/{name}": ("DELETE", "/api/subscriptions/site?forget=true", None),
    "POST /api/subscriptions/{name}/sync": ("POST", "/api/subscriptions/site/sync", None),
    "GET /api/syncs": ("GET", "/api/syncs", None),
    "GET /api/syncs/{sync_id}": ("GET", "/api/syncs/1", None),
}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    made = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db")
    made.publish(made.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    made.subscribe()
    made.sync().run("site")
    yield made
    made.close()


def _body(world: SyncWorld, **changes: object) -> dict[str, object]:
    return {
        "name": "evil",
        "cloud": "local",
        "source": world.list_url,
        "endorser_dn": world.endorser_dn,
        **changes,
    }


def test_every_sync_route_has_a_hostile_probe(world: SyncWorld) -> None:
    served = {r for r in routes(world.api().app) if SYNC.match(r)}
    assert served - set(PROBES) == set(), "sync routes without a probe here"


@pytest.mark.parametrize("route", sorted(PROBES))
def test_mallory_is_refused_everywhere_and_changes_nothing(world: SyncWorld, route: str) -> None:
    method, path, body = PROBES[route]
    api = world.api()
    before = world.sync().status("site")

    answer = api.request(
        method, path, headers=world.headers("mallory"), json=_body(world) if body else None
    )
    anonymous = api.request(method, path, json=_body(world) if body else None)

    assert answer.status_code == 403, answer.text
    assert "administrator" in answer.json()["detail"]
    assert anonymous.status_code == 401
    after = world.sync().status("site")
    assert [s.name for s in world.sync().subscriptions()] == ["site"]
    assert after.subscription.next_at == before.subscription.next_at
    assert len(after.recent) == len(before.recent)


def test_an_admin_drives_it_all_over_the_api(world: SyncWorld) -> None:
    api, admin = world.api(), world.headers("admin")

    made = api.post("/api/subscriptions", headers=admin, json=_body(world, name="second"))
    listed = api.get("/api/subscriptions", headers=admin).json()
    shown = api.get("/api/subscriptions/site", headers=admin).json()
    history = api.get("/api/syncs?subscription=site", headers=admin).json()
    one = api.get(f"/api/syncs/{history[0]['id']}", headers=admin).json()
    requested = api.post("/api/subscriptions/second/sync", headers=admin)

    assert made.status_code == 201, made.text
    assert [s["name"] for s in listed] == ["second", "site"]
    assert shown["list"]["version"] == "1"
    assert [i["state"] for i in shown["images"]] == ["active"]
    assert history[0]["outcome"] == "succeeded"
    assert [s["step"] for s in one["steps"]][:2] == ["fetch", "verify"]
    assert requested.status_code == 202
    assert "second" in world.sync().due()
    refused = api.delete("/api/subscriptions/site", headers=admin)
    assert refused.status_code == 409  # it keeps an image on the cloud
    assert api.delete("/api/subscriptions/second", headers=admin).status_code == 204


def test_a_request_names_whom_to_trust_never_a_path_on_the_server(world: SyncWorld) -> None:
    answer = world.api().post(
        "/api/subscriptions", headers=world.headers("admin"), json=_body(world, ca_dir="/tmp")
    )
    assert answer.status_code == 422
    assert "ca_dir" in answer.text


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"source": "file:///etc/shadow"}, "source"),
        ({"source": "ftp://example.org/list"}, "source"),
        ({"cloud": "nowhere"}, None),
        ({"endorser_dn": "CN=not slash form"}, "endorser_dn"),
        ({"interval_s": 10}, "interval_s"),
        ({"name": "../../etc"}, "name"),
    ],
)
def test_bad_subscriptions_are_refused_with_the_field(
    world: SyncWorld, changes: dict[str, object], field: str | None
) -> None:
    answer = world.api().post(
        "/api/subscriptions", headers=world.headers("admin"), json=_body(world, **changes)
    )
    assert answer.status_code in (404, 422), answer.text
    if field:
        assert field in answer.text
    assert [s.name for s in world.sync().subscriptions()] == ["site"]


def test_the_server_does_not_fetch_lists_or_files_from_its_own_network(tmp_path: Path) -> None:
    world = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db", fetch_private=False)
    try:
        world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
        with pytest.raises(InputError, match=r"loopback address \(127\.0\.0\.1\)"):
            world.subscribe()  # refused as it is added
        assert world.sync().subscriptions() == []
        # One added while the operator allowed it is refused at each sync after.
        allowing = replace(world.settings, fetch_private_addresses="yes")
        world.subscribe(service=bootstrap.sync_for(allowing)("admin"))
        record = world.sync().run("site")
    finally:
        world.close()
    assert record.outcome.value == "failed"
    assert re.search(r"loopback address \(127\.0\.0\.1\)", record.steps[0].detail)
    assert world.server.requests == []


def test_a_subscription_from_another_user_is_refused_before_its_source_is_looked_at(
    tmp_path: Path,
) -> None:
    from slipway.errors import PermissionDenied

    world = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db", fetch_private=False)
    try:
        with pytest.raises(PermissionDenied):  # not the address guard's answer
            world.subscribe(service=world.sync("mallory"))
    finally:
        world.close()
