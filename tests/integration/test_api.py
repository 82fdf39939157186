"""The REST API: every endpoint, the rights matrix, and bad input answered
with problem details that name the field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import WebWorld

USERS = ("alice", "bob", "carol", "anonymous")  # owner, other, group member, nobody
DEBIAN = "examples/images/debian-12"


@pytest.fixture
def world(web_world: WebWorld) -> WebWorld:
    return web_world


@pytest.fixture
def client(world: WebWorld) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as client:
        yield client


def call(
    client: TestClient, world: WebWorld, user: str, method: str, url: str, **kwargs: Any
) -> Any:
    headers = {**world.headers(user), **kwargs.pop("headers", {})}
    return client.request(method, url, headers=headers, **kwargs)


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body


# -- rights matrix -------------------------------------------------------------

# A module one may not view answers exactly as one that does not exist: 404.
VIEW = {
    "alice/private": {"alice": 200, "bob": 404, "carol": 404, "anonymous": 404},
    "alice/team": {"alice": 200, "bob": 404, "carol": 200, "anonymous": 404},
    "alice/public": {"alice": 200, "bob": 200, "carol": 200, "anonymous": 200},
}


@pytest.mark.parametrize("user", USERS)
@pytest.mark.parametrize("module", sorted(VIEW))
def test_viewing_a_module_follows_owner_group_and_public_rights(
    client: TestClient, world: WebWorld, user: str, module: str
) -> None:
    expected = VIEW[module][user]
    for suffix in ("", "/-/versions", "/-/resolved", "/-/diff?from=1&to=1"):
        response = call(client, world, user, "GET", f"/api/modules/{module}{suffix}")
        assert response.status_code == expected, (suffix, response.text)
        if expected == 404:
            missing = call(client, world, user, "GET", f"/api/modules/alice/nothing{suffix}")
            assert response.json() == {
                **missing.json(),
                "detail": missing.json()["detail"].replace("alice/nothing", module),
            }


@pytest.mark.parametrize(
    ("user", "visible"),
    [
        ("alice", ["alice/private", "alice/public", "alice/team"]),
        ("bob", ["alice/public"]),
        ("carol", ["alice/public", "alice/team"]),
        ("anonymous", ["alice/public"]),
        ("admin", ["alice/private", "alice/public", "alice/team"]),
    ],
)
def test_lists_show_only_what_the_user_may_view(
    client: TestClient, world: WebWorld, user: str, visible: list[str]
) -> None:
    body = call(client, world, user, "GET", "/api/modules?q=alice/").json()
    assert [item["name"] for item in body["items"]] == visible
    assert body["total"] == len(visible)


@pytest.mark.parametrize(
    ("user", "status"), [("alice", 201), ("bob", 403), ("carol", 403), ("anonymous", 401)]
)
def test_saving_a_new_version_needs_the_edit_right(
    client: TestClient, world: WebWorld, user: str, status: int
) -> None:
    shown = call(client, world, "alice", "GET", "/api/modules/alice/team").json()
    document = {**shown["document"], "description": "changed"}
    import yaml

    response = call(
        client,
        world,
        user,
        "POST",
        "/api/modules?name=alice/team",
        content=yaml.safe_dump(document),
        headers={"Content-Type": "application/yaml"},
    )
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["saved"] == {"kind": "image", "version": 2, "status": "updated"}


@pytest.mark.parametrize(
    ("user", "status"), [("alice", 200), ("bob", 404), ("carol", 403), ("anonymous", 401)]
)
def test_only_the_owner_shares(client: TestClient, world: WebWorld, user: str, status: int) -> None:
    response = call(
        client,
        world,
        user,
        "PUT",
        "/api/modules/alice/team/-/rights",
        json={"public_rights": ["view"]},
    )
    assert response.status_code == status, response.text


@pytest.mark.parametrize(
    ("user", "source", "status"),
    [
        ("bob", "alice/public", 201),
        ("bob", "alice/private", 404),
        ("carol", "alice/team", 201),
        ("anonymous", "alice/public", 401),
    ],
)
def test_copying_needs_the_view_right_and_a_login(
    client: TestClient, world: WebWorld, user: str, source: str, status: int
) -> None:
    response = call(
        client,
        world,
        user,
        "POST",
        f"/api/modules/{source}/-/copy",
        json={"destination": f"{user}/mine"},
    )
    assert response.status_code == status, response.text
    if status == 201:
        copied = response.json()
        assert copied["rights"]["owner"] == user and copied["copied_from"] == f"{source}@1"
        assert call(client, world, "alice", "GET", f"/api/modules/{user}/mine").status_code == 404


@pytest.mark.parametrize(("user", "status"), [("alice", 201), ("anonymous", 401)])
def test_deploying_needs_a_login(
    client: TestClient, world: WebWorld, user: str, status: int
) -> None:
    body = {"module": "examples/images/debian-12", "cloud": "local"}
    response = call(client, world, user, "POST", "/api/runs", json=body)
    assert response.status_code == status, response.text


# -- every endpoint ------------------------------------------------------------


def test_listing_filters_by_text_os_cloud_owner_and_kind_and_pages(
    client: TestClient, world: WebWorld
) -> None:
    def names(query: str) -> list[str]:
        return [
            i["name"]
            for i in call(client, world, "alice", "GET", f"/api/modules?{query}").json()["items"]
        ]

    assert names("q=DEBIAN") == ["alice/private", "alice/public", "alice/team", DEBIAN]
    assert names("os=almalinux") == ["examples/images/almalinux-9"]
    assert "examples/apps/nginx" in names("kind=component&cloud=local")
    assert names("kind=cloud&limit=2") == [
        "examples/clouds/aws-eu-west-1",
        "examples/clouds/exoscale-ch-dk",
    ]
    assert names("owner=nobody") == []
    page = call(client, world, "alice", "GET", "/api/modules?limit=2&offset=2").json()
    assert (page["limit"], page["offset"], len(page["items"])) == (2, 2, 2)
    assert page["total"] > 4
    debian = next(
        i
        for i in call(client, world, "alice", "GET", "/api/modules?q=debian-12").json()["items"]
        if i["name"] == DEBIAN
    )
    assert debian["os"] == "debian" and "local" in debian["clouds"]


def test_a_definition_is_imported_validated_and_versioned(
    client: TestClient, world: WebWorld
) -> None:
    text = "kind: image\nparent: examples/images/debian-12\ndescription: mine\nsize: {cpu: 2}\n"
    dry = call(client, world, "bob", "POST", "/api/modules?name=bob/web&dry_run=true", content=text)
    assert dry.status_code == 201 and dry.json()["saved"] is None
    assert call(client, world, "bob", "GET", "/api/modules/bob/web").status_code == 404
    saved = call(
        client, world, "bob", "POST", "/api/modules?name=bob/web&comment=first", content=text
    )
    assert saved.json()["saved"]["version"] == 1
    again = call(client, world, "bob", "POST", "/api/modules?name=bob/web", content=text)
    assert again.json()["saved"]["status"] == "unchanged"
    shown = call(client, world, "bob", "GET", "/api/modules/bob/web@1").json()
    assert shown["comment"] == "first" and shown["document"]["parent"] == DEBIAN
    # Inherited native images make it listable by cloud.
    found = call(client, world, "bob", "GET", "/api/modules?owner=bob&cloud=local").json()
    assert [i["name"] for i in found["items"]] == ["bob/web"]


def test_resolve_shows_flavor_origin_and_warnings_per_cloud(
    client: TestClient, world: WebWorld
) -> None:
    body = call(
        client, world, "alice", "GET", f"/api/modules/{DEBIAN}/-/resolved?cloud=exoscale-ch-gva"
    ).json()
    target = body["clouds"]["exoscale-ch-gva"]
    assert target["flavor"]["flavor"]["name"] == "Tiny"
    assert body["origin"]["login_user"] == f"{DEBIAN}@1"
    assert any("slipway_managed" in w for w in body["warnings"])


def test_diff_between_versions(client: TestClient, world: WebWorld) -> None:
    for description in ("one", "two"):
        call(
            client,
            world,
            "bob",
            "POST",
            "/api/modules?name=bob/d",
            content=f"kind: image\ndescription: {description}\n",
        )
    body = call(client, world, "bob", "GET", "/api/modules/bob/d/-/diff").json()
    assert (body["old"], body["new"]) == ("bob/d@1", "bob/d@2")
    assert body["changes"] == [
        {"path": "description", "action": "changed", "old": "one", "new": "two"}
    ]
    versions = call(client, world, "bob", "GET", "/api/modules/bob/d/-/versions").json()
    assert [v["version"] for v in versions] == [1, 2]


def test_clouds_flavors_and_sizes(client: TestClient, world: WebWorld) -> None:
    clouds = call(client, world, "anonymous", "GET", "/api/clouds").json()
    assert "exoscale-ch-gva" in [c["name"] for c in clouds]
    flavors = call(client, world, "anonymous", "GET", "/api/clouds/ultimum/flavors").json()
    assert flavors[0]["name"] == "Basic"
    rows = call(client, world, "anonymous", "GET", "/api/sizes?cpu=2&ram=4").json()
    picks = {r["cloud"]: r["flavor"]["flavor"]["name"] for r in rows if r["flavor"]}
    assert (picks["exoscale-ch-gva"], picks["ultimum"]) == ("Medium", "Standard Plus")
    problem(call(client, world, "anonymous", "GET", "/api/clouds/nowhere/flavors"), 404)


def test_the_clouds_endpoint_shows_the_local_accelerator_and_why(world: WebWorld) -> None:
    from dataclasses import replace

    from slipway.entrypoints.api.app import create_app

    def details(cloud: Any) -> dict[str, str]:
        if cloud.driver != "local":
            return {}
        return {"accelerator": "tcg", "accelerator_reason": "/dev/kvm is missing or not usable"}

    app = create_app(replace(world.services, cloud_details=details), dashboard=False)
    with TestClient(app) as client:
        clouds = {c["name"]: c for c in client.get("/api/clouds").json()}
    assert clouds["local"]["details"]["accelerator"] == "tcg"
    assert "kvm" in clouds["local"]["details"]["accelerator_reason"]
    assert clouds["ultimum"]["details"] == {}


def test_users_groups_passwords_and_tokens(client: TestClient, world: WebWorld) -> None:
    me = call(client, world, "carol", "GET", "/api/me").json()
    assert me == {
        "user": "carol",
        "admin": False,
        "groups": ["team"],
        "editor_of": [],
        "anonymous": False,
    }
    assert call(client, world, "anonymous", "GET", "/api/me").json()["anonymous"] is True
    new = {"name": "dave", "password": "long enough", "groups": ["team"]}
    problem(call(client, world, "bob", "POST", "/api/users", json=new), 403)
    assert call(client, world, "admin", "POST", "/api/users", json=new).status_code == 201
    assert world.identity.login("dave", "long enough").user == "dave"
    problem(call(client, world, "admin", "POST", "/api/users", json=new), 409)
    assert (
        call(client, world, "admin", "POST", "/api/groups", json={"name": "ops"}).status_code == 201
    )
    problem(
        call(client, world, "bob", "PUT", "/api/users/dave/password", json={"password": "x" * 9}),
        403,
    )
    assert (
        call(
            client, world, "bob", "PUT", "/api/users/bob/password", json={"password": "x" * 9}
        ).status_code
        == 204
    )
    created = call(client, world, "bob", "POST", "/api/tokens", json={"name": "laptop"}).json()
    assert created["token"].startswith("slw_")
    headers = {"Authorization": f"Bearer {created['token']}"}
    assert client.get("/api/me", headers=headers).json()["user"] == "bob"
    listed = call(client, world, "bob", "GET", "/api/tokens").json()
    assert [t["name"] for t in listed] == ["tests", "laptop"] and "token" not in listed[0]
    problem(call(client, world, "carol", "DELETE", f"/api/tokens/{created['id']}"), 404)
    assert call(client, world, "bob", "DELETE", f"/api/tokens/{created['id']}").status_code == 204
    problem(client.get("/api/me", headers=headers), 401)


def test_the_openapi_document_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert {
        "/api/modules",
        "/api/modules/{name}",
        "/api/clouds",
        "/api/tokens",
        "/api/runs",
    } <= set(paths)
    assert not any(p.startswith(("/catalog", "/login")) for p in paths)


# -- bad input -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "kwargs", "path"),
    [
        ("GET", "/api/modules?limit=0", {}, "query.limit"),
        ("GET", "/api/modules?offset=-1", {}, "query.offset"),
        ("GET", "/api/modules?kind=vm", {}, "query.kind.0"),
        ("GET", "/api/modules/bad%20name", {}, "path.name"),
        ("GET", "/api/modules/x/-/diff?from=zero", {}, "query.from"),
        ("GET", "/api/sizes?cpu=0", {}, "query.cpu"),
        ("GET", "/api/sizes?ram=-1", {}, "query.ram"),
        (
            "POST",
            "/api/modules?name=a/b",
            {"content": "kind: image\nsize: {cpu: many}\n"},
            "size.cpu",
        ),
        ("POST", "/api/modules?name=a/b", {"content": "kind: image\ncolour: red\n"}, "colour"),
        ("POST", "/api/modules?name=a/b", {"content": "kind: [unclosed\n"}, ""),
        ("POST", "/api/modules?name=a/b", {"content": b"\xff\xfe"}, "body"),
        ("POST", "/api/modules?name=a/b@2", {"content": "kind: image\n"}, "path.name"),
        ("POST", "/api/modules", {"content": "kind: image\n"}, "query.name"),
        (
            "POST",
            f"/api/modules/{DEBIAN}/-/copy",
            {"json": {"destination": "../x"}},
            "body.destination",
        ),
        ("POST", f"/api/modules/{DEBIAN}/-/copy", {"json": {}}, "body.destination"),
        (
            "PUT",
            f"/api/modules/{DEBIAN}/-/rights",
            {"json": {"public_rights": ["own"]}},
            "body.public_rights.0",
        ),
        (
            "PUT",
            f"/api/modules/{DEBIAN}/-/rights",
            {"json": {"group_rights": ["view"]}},
            "body.group",
        ),
        ("POST", "/api/tokens", {"json": {"name": ""}}, "body.name"),
        ("POST", "/api/users", {"json": {"name": "Not A Name"}}, "body.name"),
        ("PUT", "/api/users/alice/password", {"json": {"password": "short"}}, "body.password"),
        (
            "POST",
            "/api/tokens",
            {"content": "not json", "headers": {"Content-Type": "application/json"}},
            "body",
        ),
    ],
)
def test_bad_input_is_422_naming_the_field(
    client: TestClient, world: WebWorld, method: str, url: str, kwargs: dict[str, Any], path: str
) -> None:
    user = "admin" if "/users" in url else "alice"
    headers = {**world.headers(user), **kwargs.pop("headers", {})}
    body = problem(client.request(method, url, headers=headers, **kwargs), 422)
    assert any(e["path"].startswith(path) for e in body.get("errors", [{"path": ""}])), body


def test_unknown_things_are_404_and_a_bad_token_401(client: TestClient, world: WebWorld) -> None:
    problem(call(client, world, "alice", "GET", "/api/modules/no/such"), 404)
    problem(call(client, world, "alice", "GET", f"/api/modules/{DEBIAN}@99"), 404)
    problem(call(client, world, "alice", "GET", "/api/nothing-here"), 404)
    body = problem(client.get("/api/me", headers={"Authorization": "Bearer slw_forged"}), 401)
    assert "token" in body["detail"]


def test_a_session_cookie_needs_the_csrf_header_to_change_things(
    client: TestClient, world: WebWorld
) -> None:
    session = world.identity.login("bob", WebWorld.PASSWORD)
    client.cookies.set("slipway_session", session.cookie)
    assert client.get("/api/me").json()["user"] == "bob"
    problem(client.post("/api/tokens", json={"name": "x"}), 403)
    ok = client.post("/api/tokens", json={"name": "x"}, headers={"X-CSRF-Token": session.csrf})
    assert ok.status_code == 201
