"""Security groups are resolved in the definition's own scope and are two
groups on a cloud when two users declare the same name; Slipway never
rewrites a group it did not make. bob, a second user, tries to borrow,
shadow or rewrite alice's firewall."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.domain.machines import Rule
from slipway.domain.modules import Right
from tests.conftest import WebWorld
from tests.integration.test_api import call, problem
from tests.integration.test_api_runs import drive

GROUP = (
    "kind: security-group\nname: {name}\n"
    "rules: [{{protocol: tcp, ports: '{port}', source: {source}}}]\n"
)
DB = GROUP.replace("{name}", "db")
USES_DB = "kind: image\nparent: examples/images/debian-12\nsecurity_groups: [db]\n"


@pytest.fixture
def world(web_world: WebWorld) -> WebWorld:
    return web_world


@pytest.fixture
def client(world: WebWorld) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as test_client:
        yield test_client


def save(client: TestClient, world: WebWorld, user: str, name: str, text: str) -> None:
    saved = call(client, world, user, "POST", f"/api/modules?name={name}", content=text)
    assert saved.status_code == 201, saved.text


def deploy(client: TestClient, world: WebWorld, user: str, module: str) -> Any:
    return call(client, world, user, "POST", "/api/runs", json={"module": module, "cloud": "local"})


def groups_of_run(client: TestClient, world: WebWorld, user: str, run_id: str) -> tuple[str, ...]:
    run = call(client, world, user, "GET", f"/api/runs/{run_id}").json()
    return world.cloud.spec_of(run["parameters"]["instance.id"]).security_groups


def rules(world: WebWorld, name: str) -> set[tuple[str, str, str]]:
    group = world.cloud.check_security_group(name)
    assert group is not None, name
    return {(r.protocol, r.ports, r.source) for r in group.rules}


def test_a_bare_name_never_reaches_another_users_group(client: TestClient, world: WebWorld) -> None:
    save(client, world, "alice", "alice/groups/db", DB.format(port=5432, source="10.0.0.0/8"))
    save(client, world, "bob", "bob/app", USES_DB)
    resolved = call(client, world, "bob", "GET", "/api/modules/bob/app/-/resolved").json()
    (plan,) = resolved["clouds"]["local"]["security_groups"]
    assert (plan["action"], plan["on_cloud"], plan["declared_by"]) == ("must-exist", "db", "")
    # Nothing called "db" on the cloud: refused before anything is made.
    refused = problem(deploy(client, world, "bob", "bob/app"), 404)
    assert refused["detail"] == "security group 'db' does not exist on local"
    assert world.cloud.list_machines({}) == []


def test_a_group_published_by_another_user_does_not_shadow_a_name(
    client: TestClient, world: WebWorld
) -> None:
    save(client, world, "carol", "carol/groups/db", DB.format(port="1-65535", source="0.0.0.0/0"))
    world.services.catalog("carol").share(
        "carol/groups/db",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW}),
    )
    world.cloud.add_foreign_group("db", [Rule("tcp", "5432", "10.0.0.0/8")])  # bob's, by hand
    save(client, world, "bob", "bob/app", USES_DB)
    run = deploy(client, world, "bob", "bob/app")
    assert run.status_code == 201, run.text
    drive(world, run.json()["id"])
    assert groups_of_run(client, world, "bob", run.json()["id"]) == ("db",)
    assert rules(world, "db") == {("tcp", "5432", "10.0.0.0/8")}
    assert world.cloud.check_security_group("slipway:carol:db") is None


def test_two_users_db_groups_are_two_groups_on_the_cloud(
    client: TestClient, world: WebWorld
) -> None:
    save(client, world, "alice", "alice/groups/db", DB.format(port=5432, source="10.0.0.0/8"))
    save(client, world, "alice", "alice/app", USES_DB)
    # bob's declaration of the same name is his own: no clash at import.
    save(client, world, "bob", "bob/groups/db", DB.format(port=3306, source="0.0.0.0/0"))
    save(client, world, "bob", "bob/app", USES_DB)
    runs = {
        user: deploy(client, world, user, f"{user}/app").json()["id"] for user in ("alice", "bob")
    }
    for run_id in runs.values():
        drive(world, run_id)
    assert groups_of_run(client, world, "alice", runs["alice"]) == ("slipway:alice:db",)
    assert groups_of_run(client, world, "bob", runs["bob"]) == ("slipway:bob:db",)
    assert rules(world, "slipway:alice:db") == {("tcp", "5432", "10.0.0.0/8")}
    assert rules(world, "slipway:bob:db") == {("tcp", "3306", "0.0.0.0/0")}


def test_declaring_a_name_someone_uses_rewrites_nobodys_group(
    client: TestClient, world: WebWorld
) -> None:
    world.cloud.add_foreign_group("web", [Rule("tcp", "8443", "192.0.2.0/24")])
    alice = deploy(client, world, "alice", "examples/apps/nginx")  # the site's web group
    drive(world, alice.json()["id"])
    site = rules(world, "slipway:admin:web")
    save(
        client,
        world,
        "bob",
        "bob/groups/web",
        GROUP.format(name="web", port="1-65535", source="0.0.0.0/0"),
    )
    save(
        client,
        world,
        "bob",
        "bob/nginx",
        "kind: component\nimage: examples/images/debian-12\nsecurity_groups: [web]\n",
    )
    bob = deploy(client, world, "bob", "bob/nginx")
    drive(world, bob.json()["id"])
    assert groups_of_run(client, world, "bob", bob.json()["id"]) == ("slipway:bob:web",)
    assert rules(world, "slipway:admin:web") == site  # alice's machine keeps its firewall
    assert rules(world, "web") == {("tcp", "8443", "192.0.2.0/24")}
    assert groups_of_run(client, world, "alice", alice.json()["id"]) == ("slipway:admin:web",)


def test_a_group_of_slipways_name_made_by_someone_else_is_left_alone(
    client: TestClient, world: WebWorld
) -> None:
    world.cloud.add_foreign_group("slipway:bob:db", [Rule("tcp", "22", "0.0.0.0/0")])
    save(client, world, "bob", "bob/groups/db", DB.format(port=5432, source="10.0.0.0/8"))
    save(client, world, "bob", "bob/app", USES_DB)
    run = deploy(client, world, "bob", "bob/app").json()
    drive(world, run["id"])
    shown = call(client, world, "bob", "GET", f"/api/runs/{run['id']}").json()
    assert shown["state"] == "failed" and "not made by Slipway" in shown["message"]
    assert rules(world, "slipway:bob:db") == {("tcp", "22", "0.0.0.0/0")}
    assert world.cloud.list_machines({}) == []


@pytest.mark.parametrize(
    ("groups", "words"),
    [
        ("['slipway:alice:db']", "names starting with 'slipway:' are those Slipway gives"),
        ("[alice/groups/db@1]", "a security group is named without @version"),
    ],
)
def test_nobody_attaches_another_users_group_by_its_cloud_name(
    client: TestClient, world: WebWorld, groups: str, words: str
) -> None:
    save(client, world, "alice", "alice/groups/db", DB.format(port=5432, source="10.0.0.0/8"))
    text = f"kind: image\nparent: examples/images/debian-12\nsecurity_groups: {groups}\n"
    body = problem(
        call(client, world, "bob", "POST", "/api/modules?name=bob/app", content=text), 422
    )
    assert words in body["detail"] and body["errors"][0]["path"] == "security_groups.0"


def test_a_group_shared_with_bob_is_used_by_its_module_name(
    client: TestClient, world: WebWorld
) -> None:
    save(client, world, "alice", "alice/groups/db", DB.format(port=5432, source="10.0.0.0/8"))
    world.services.catalog("alice").share(
        "alice/groups/db",
        group=None,
        group_rights=frozenset(),
        public_rights=frozenset({Right.VIEW}),
    )
    text = "kind: image\nparent: examples/images/debian-12\nsecurity_groups: [alice/groups/db]\n"
    save(client, world, "bob", "bob/app", text)
    run = deploy(client, world, "bob", "bob/app").json()
    drive(world, run["id"])
    assert groups_of_run(client, world, "bob", run["id"]) == ("slipway:alice:db",)
    assert rules(world, "slipway:alice:db") == {("tcp", "5432", "10.0.0.0/8")}


def test_the_default_group_stays_one_shared_group(client: TestClient, world: WebWorld) -> None:
    refused = call(
        client,
        world,
        "bob",
        "POST",
        "/api/modules?name=bob/groups/open",
        content="kind: security-group\nname: slipway_managed\nrules: []\n",
    )
    assert "slipway_managed is Slipway's default group" in problem(refused, 422)["detail"]
    for user in ("alice", "bob"):
        run = deploy(client, world, user, "examples/images/debian-12").json()
        drive(world, run["id"])
        assert groups_of_run(client, world, user, run["id"]) == ("slipway_managed",)
