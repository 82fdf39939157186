"""Names are owned: a user creates modules under their own name, under a
group's name if they are one of its editors, or anywhere if they are an
admin. Each test is a second, hostile user trying to take a name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.adapters.definitions.loader import LoadedDefinition, load_text
from slipway.errors import Conflict, PermissionDenied
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService
from tests.conftest import WebWorld, cheap_hasher, memory_units
from tests.integration.test_api import call, problem

IMAGE = "kind: image\nparent: examples/images/debian-12\ndescription: {}\n"


@pytest.fixture
def world(web_world: WebWorld) -> WebWorld:
    return web_world


@pytest.fixture
def client(world: WebWorld) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, world: WebWorld, user: str, name: str, text: str, **query: str) -> Any:
    params = "".join(f"&{k}={v}" for k, v in query.items())
    return call(client, world, user, "POST", f"/api/modules?name={name}{params}", content=text)


def exists(client: TestClient, world: WebWorld, name: str) -> bool:
    return call(client, world, "admin", "GET", f"/api/modules/{name}").status_code == 200


def test_a_user_creates_modules_under_their_own_name(client: TestClient, world: WebWorld) -> None:
    saved = post(client, world, "bob", "bob/images/web", IMAGE.format("mine"))
    assert saved.status_code == 201, saved.text
    assert (
        call(client, world, "bob", "GET", "/api/modules/bob/images/web").json()["rights"]["owner"]
        == "bob"
    )


@pytest.mark.parametrize("name", ["alice/images/web", "examples/images/web", "carol/x", "team/x"])
def test_nobody_creates_a_module_in_someone_elses_namespace(
    client: TestClient, world: WebWorld, name: str
) -> None:
    body = problem(post(client, world, "bob", name, IMAGE.format("squatted")), 403)
    namespace = name.split("/")[0]
    assert body["detail"] == (
        f"bob cannot create {name}: {namespace}/ is not a namespace bob may create modules in"
    )
    assert not exists(client, world, name)


def test_a_dry_run_answers_as_the_import_would(client: TestClient, world: WebWorld) -> None:
    refused = post(client, world, "bob", "alice/x", IMAGE.format("x"), dry_run="true")
    assert "bob cannot create alice/x" in problem(refused, 403)["detail"]
    assert post(client, world, "bob", "bob/x", IMAGE.format("x"), dry_run="true").status_code == 201


def test_a_name_outside_any_namespace_is_for_admins(client: TestClient, world: WebWorld) -> None:
    body = problem(post(client, world, "bob", "toplevel", IMAGE.format("x")), 403)
    assert "only an admin creates a module outside a namespace" in body["detail"]
    assert post(client, world, "admin", "toplevel", IMAGE.format("x")).status_code == 201


def test_taking_an_existing_private_name_reads_as_taking_a_new_one(
    client: TestClient, world: WebWorld
) -> None:
    """bob learns nothing of alice/private by trying to save over it."""
    hidden = problem(post(client, world, "bob", "alice/private", IMAGE.format("x")), 403)
    missing = problem(post(client, world, "bob", "alice/nothing", IMAGE.format("x")), 403)
    assert hidden == {
        **missing,
        "detail": missing["detail"].replace("alice/nothing", "alice/private"),
    }
    # Even a byte-for-byte copy of its document is not "unchanged" for bob.
    document = call(client, world, "alice", "GET", "/api/modules/alice/private").json()["document"]
    import yaml

    again = post(client, world, "bob", "alice/private", yaml.safe_dump(document))
    assert "bob cannot create alice/private" in problem(again, 403)["detail"]
    assert call(client, world, "alice", "GET", "/api/modules/alice/private").json()["version"] == 1


def test_group_editors_create_in_the_groups_namespace_and_members_do_not(
    client: TestClient, world: WebWorld
) -> None:
    created = call(
        client,
        world,
        "admin",
        "POST",
        "/api/groups",
        json={"name": "lab", "members": ["bob"], "editors": ["carol"]},
    )
    assert created.status_code == 201, created.text
    assert call(client, world, "carol", "GET", "/api/me").json()["editor_of"] == ["lab"]
    assert post(client, world, "carol", "lab/images/x", IMAGE.format("x")).status_code == 201
    refused = problem(post(client, world, "bob", "lab/images/y", IMAGE.format("y")), 403)
    assert refused["detail"].startswith("bob cannot create lab/images/y: lab/ is not")
    # An editor creates names, not rights over the others' modules there.
    changed = post(client, world, "admin", "lab/images/z", IMAGE.format("z"))
    assert changed.status_code == 201
    over = problem(post(client, world, "carol", "lab/images/z", IMAGE.format("carol's")), 403)
    assert over["detail"] == "carol lacks the edit right on lab/images/z"


def test_a_copy_lands_only_in_a_namespace_of_the_copier(
    client: TestClient, world: WebWorld
) -> None:
    body = problem(
        call(
            client,
            world,
            "bob",
            "POST",
            "/api/modules/alice/public/-/copy",
            json={"destination": "alice/shadow"},
        ),
        403,
    )
    assert "bob cannot create alice/shadow" in body["detail"]
    assert not exists(client, world, "alice/shadow")


def test_a_refused_import_names_every_refused_module_and_saves_none(
    service: Any, people: IdentityService, examples: list[LoadedDefinition]
) -> None:
    service("admin").import_files(examples)
    people.add_user("admin", "bob")
    mine = load_text("kind: image\ndescription: fine\n", "bob/ok.yaml", "bob/ok")
    theirs = [
        load_text("kind: image\ndescription: x\n", f"{name}.yaml", name)
        for name in ("alice/a", "alice/b", "examples/c")
    ]
    with pytest.raises(PermissionDenied) as refused:
        service("bob").import_files([mine, *theirs])
    assert str(refused.value).splitlines() == [
        "bob cannot create alice/a, alice/b: alice/ is not a namespace bob may create modules in",
        "bob cannot create examples/c: examples/ is not a namespace bob may create modules in",
    ]
    assert refused.value.exit_code == 4
    assert [v.name for v, _ in service("bob").list_modules()] == []  # not even bob/ok


def test_the_first_user_of_a_store_imports_the_examples_and_the_next_cannot(
    examples: list[LoadedDefinition],
) -> None:
    units = memory_units()
    first = CatalogService(units, "operator")
    assert {s.status for s in first.import_files(examples).saved} == {"new"}
    IdentityService(units, cheap_hasher()).add_user("operator", "mallory")
    with pytest.raises(PermissionDenied, match="mallory cannot create examples/"):
        CatalogService(units, "mallory").validate(examples)


def test_a_group_cannot_take_a_users_namespace_nor_a_user_a_groups(
    people: IdentityService,
) -> None:
    people.add_user("admin", "alice")
    people.add_group("admin", "lab")
    with pytest.raises(Conflict, match="alice is a user"):
        people.add_group("admin", "alice", editors=[])
    with pytest.raises(Conflict, match="lab is a group"):
        people.add_user("admin", "lab")
