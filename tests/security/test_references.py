"""References respect rights, and what one may not view does not exist for
them: a second user, bob, probes alice's private modules through imports,
lookups, search, facets, resolved views, clouds and runs, and learns nothing
a missing name would not tell him."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.domain.modules import Right
from tests.conftest import WebWorld
from tests.integration.test_api import call, problem

HTML = {"Accept": "text/html"}


@pytest.fixture
def world(web_world: WebWorld) -> WebWorld:
    admin = web_world.services.catalog("admin")
    # A cloud the admin has not shared yet, with its own catalog.
    lab = {
        "lab/catalogs/lab": "kind: catalog\nflavors:\n  - {name: secret-size, cpu: 3, ram: 3}\n",
        "lab/clouds/lab": "kind: cloud\ndriver: openstack\ncatalog: lab/catalogs/lab\n",
    }
    from slipway.adapters.definitions.loader import load_text

    admin.import_files([load_text(text, f"{name}.yaml", name) for name, text in lab.items()])
    alice = web_world.services.catalog("alice")
    alice.import_files(
        [
            load_text(
                "kind: security-group\nname: db\nrules: [{protocol: tcp, ports: '5432'}]\n",
                "alice/groups/db.yaml",
                "alice/groups/db",
            ),
            load_text(
                "kind: image\nparent: alice/private\ndescription: alice's secret project\n"
                "os: {distribution: alpine}\n",
                "alice/secret.yaml",
                "alice/secret",
            ),
        ]
    )
    return web_world


@pytest.fixture
def client(world: WebWorld) -> Iterator[TestClient]:
    with TestClient(world.app, raise_server_exceptions=False) as test_client:
        yield test_client


def post(client: TestClient, world: WebWorld, user: str, name: str, text: str) -> Any:
    return call(client, world, user, "POST", f"/api/modules?name={name}", content=text)


def same_answer(hidden: dict[str, Any], missing: dict[str, Any], swap: tuple[str, str]) -> None:
    """The two problem bodies are one, but for the name asked about."""
    import json

    assert json.loads(json.dumps(missing).replace(*swap)) == hidden


# -- importing a reference ----------------------------------------------------

REFERENCES = [
    ("parent", "kind: image\nparent: {}\n", "alice/private", "parent"),
    ("pinned parent", "kind: image\nparent: {}@1\n", "alice/private", "parent"),
    ("image", "kind: component\nimage: {}\n", "alice/private", "image"),
    (
        "security group",
        "kind: image\nparent: examples/images/debian-12\nsecurity_groups: [{}]\n",
        "alice/groups/db",
        "security_groups.0",
    ),
    (
        "cloud",
        "kind: image\nlogin_user: x\nnative: {{{}: {{id: x}}}}\n",
        "lab",
        "native.lab",
    ),
]


@pytest.mark.parametrize(
    ("what", "text", "target", "key"), REFERENCES, ids=[r[0] for r in REFERENCES]
)
def test_a_reference_to_a_module_one_may_not_view_is_refused_naming_it(
    client: TestClient, world: WebWorld, what: str, text: str, target: str, key: str
) -> None:
    refused = problem(post(client, world, "bob", "bob/probe", text.format(target)), 403)
    assert refused["errors"][0]["path"] == key and target in refused["detail"]
    assert call(client, world, "bob", "GET", "/api/modules/bob/probe").status_code == 404
    # A reference to nothing at all is refused in the very same words.
    nothing = target.replace("alice/", "alice/no-") if "/" in target else "nowhere"
    missing = problem(post(client, world, "bob", "bob/probe", text.format(nothing)), 403)
    same_answer(refused, missing, (nothing, target))


def test_a_reference_to_a_shared_module_is_accepted(client: TestClient, world: WebWorld) -> None:
    saved = post(client, world, "carol", "carol/mine", "kind: image\nparent: alice/team\n")
    assert saved.status_code == 201, saved.text


def test_a_refused_reference_exits_4_on_the_command_line(tmp_path: Any) -> None:
    """The same refusal through the service the CLI calls: PermissionDenied, exit 4."""
    from slipway.adapters.definitions.loader import load_text
    from slipway.errors import RefusedReference
    from slipway.services.catalog import CatalogService
    from slipway.services.identity import IdentityService
    from tests.conftest import cheap_hasher, memory_units

    units = memory_units()
    alice = CatalogService(units, "alice")  # the first user: admin
    alice.import_files([load_text("kind: image\n", "alice/base.yaml", "alice/base")])
    IdentityService(units, cheap_hasher()).add_user("alice", "bob")
    bob = CatalogService(units, "bob")
    child = load_text("kind: image\nparent: alice/base\n", "bob/child.yaml", "bob/child")
    with pytest.raises(RefusedReference) as refused:
        bob.import_files([child])
    assert refused.value.exit_code == 4
    assert str(refused.value) == (
        "bob/child.yaml:2: parent: parent 'alice/base' names no module bob may view"
    )


# -- looking a module up -------------------------------------------------------


@pytest.mark.parametrize("suffix", ["", "/-/versions", "/-/resolved", "/-/diff", "@1"])
@pytest.mark.parametrize("user", ["bob", "anonymous"])
def test_a_private_module_answers_exactly_as_a_missing_one(
    client: TestClient, world: WebWorld, user: str, suffix: str
) -> None:
    hidden = call(client, world, user, "GET", f"/api/modules/alice/private{suffix}")
    missing = call(client, world, user, "GET", f"/api/modules/alice/nothing{suffix}")
    same_answer(problem(hidden, 404), problem(missing, 404), ("alice/nothing", "alice/private"))


def test_sharing_or_copying_a_private_module_answers_as_a_missing_one(
    client: TestClient, world: WebWorld
) -> None:
    for method, tail, body in (
        ("PUT", "/-/rights", {"public_rights": ["view"]}),
        ("POST", "/-/copy", {"destination": "bob/copy"}),
    ):
        hidden = call(client, world, "bob", method, f"/api/modules/alice/private{tail}", json=body)
        missing = call(client, world, "bob", method, f"/api/modules/alice/nothing{tail}", json=body)
        same_answer(problem(hidden, 404), problem(missing, 404), ("alice/nothing", "alice/private"))


def test_the_dashboard_answers_a_private_module_as_a_missing_one(
    client: TestClient, world: WebWorld
) -> None:
    from tests.integration.test_dashboard_pages import login

    login(client, "bob")
    for tail in ("", "/-/deploy"):
        hidden = client.get(f"/images/alice/private{tail}", headers=HTML)
        missing = client.get(f"/images/alice/nothing{tail}", headers=HTML)
        assert hidden.status_code == missing.status_code == 404
        assert hidden.text == missing.text.replace("alice/nothing", "alice/private")


def test_a_run_of_someone_else_answers_as_a_missing_one(
    client: TestClient, world: WebWorld
) -> None:
    made = call(
        client,
        world,
        "alice",
        "POST",
        "/api/runs",
        json={"module": "alice/private", "cloud": "local"},
    )
    run_id = made.json()["id"]
    for tail in ("", "/terminate"):
        method = "POST" if tail else "GET"
        hidden = call(client, world, "bob", method, f"/api/runs/{run_id}{tail}")
        missing = call(client, world, "bob", method, f"/api/runs/000000000000{tail}")
        same_answer(problem(hidden, 404), problem(missing, 404), ("000000000000", run_id))


# -- search, facets, clouds ------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "q=alice",
        "q=secret",
        "os=alpine",
        "owner=alice",
        "cloud=local&q=alice",
        "kind=security-group",
    ],
)
@pytest.mark.parametrize(
    ("user", "visible"), [("bob", {"alice/public"}), ("anonymous", {"alice/public"})]
)
def test_search_lists_only_what_the_caller_may_view(
    client: TestClient, world: WebWorld, user: str, visible: set[str], query: str
) -> None:
    body = call(client, world, user, "GET", f"/api/modules?{query}&limit=500").json()
    names = {item["name"] for item in body["items"]}
    assert not {n for n in names if n.startswith("alice/")} - visible
    assert body["total"] == len(body["items"])  # nobody else's counted in


def test_anonymous_callers_see_public_modules_only(client: TestClient, world: WebWorld) -> None:
    admin = world.services.catalog("admin")
    everything = {
        i["name"]
        for i in call(
            client,
            world,
            "admin",
            "GET",
            "/api/modules?limit=500&kind=image&kind=component&kind=cloud&kind=catalog&kind=security-group",
        ).json()["items"]
    }
    seen = {
        i["name"]
        for i in call(
            client,
            world,
            "anonymous",
            "GET",
            "/api/modules?limit=500&kind=image&kind=component&kind=cloud&kind=catalog&kind=security-group",
        ).json()["items"]
    }
    public = {name for name in everything if Right.VIEW in admin.show(name).rights.public_rights}
    assert seen == public and "alice/public" in seen and "lab/clouds/lab" not in seen


def test_facets_never_show_what_a_parent_no_longer_shared_says(
    client: TestClient, world: WebWorld
) -> None:
    saved = post(client, world, "bob", "bob/child", "kind: image\nparent: alice/public\n")
    assert saved.status_code == 201
    alice = world.services.catalog("alice")
    alice.share("alice/public", group=None, group_rights=frozenset(), public_rights=frozenset())
    from slipway.adapters.definitions.loader import load_text

    document = alice.show("alice/public").document
    import yaml

    changed = {**document, "description": "alice's private plans", "os": {"distribution": "plan9"}}
    alice.import_files([load_text(yaml.safe_dump(changed), "p.yaml", "alice/public")])
    found = call(client, world, "bob", "GET", "/api/modules?q=bob/child").json()["items"]
    assert [(i["name"], i["description"], i["os"]) for i in found] == [("bob/child", "", "")]
    assert call(client, world, "bob", "GET", "/api/modules?os=plan9").json()["total"] == 0
    refused = problem(call(client, world, "bob", "GET", "/api/modules/bob/child/-/resolved"), 403)
    assert refused["errors"][0]["path"] == "parent"


@pytest.mark.parametrize("user", ["bob", "anonymous"])
def test_clouds_flavors_and_sizes_show_only_clouds_the_caller_may_view(
    client: TestClient, world: WebWorld, user: str
) -> None:
    assert "lab" in [c["name"] for c in call(client, world, "admin", "GET", "/api/clouds").json()]
    clouds = [c["name"] for c in call(client, world, user, "GET", "/api/clouds").json()]
    assert "lab" not in clouds and "local" in clouds
    hidden = call(client, world, user, "GET", "/api/clouds/lab/flavors")
    missing = call(client, world, user, "GET", "/api/clouds/nowhere/flavors")
    same_answer(problem(hidden, 404), problem(missing, 404), ("'nowhere'", "'lab'"))
    rows = call(client, world, user, "GET", "/api/sizes?cpu=3&ram=3").json()
    assert "lab" not in [r["cloud"] for r in rows]
    assert "secret-size" not in str(rows)
    problem(call(client, world, user, "GET", "/api/sizes?cpu=1&cloud=lab"), 404)


def test_the_dashboard_catalog_and_clouds_pages_show_only_what_bob_may_view(
    client: TestClient, world: WebWorld
) -> None:
    from tests.integration.test_dashboard_pages import login

    login(client, "bob")
    catalog = client.get("/catalog?q=alice", headers=HTML).text
    assert "alice/public" in catalog and "alice/private" not in catalog
    assert "alice/secret" not in catalog
    clouds = client.get("/clouds", headers=HTML).text
    assert "secret-size" not in clouds and "local" in clouds
    hidden = client.get("/catalog?cloud=lab", headers=HTML)
    missing = client.get("/catalog?cloud=nowhere", headers=HTML)
    assert hidden.status_code == missing.status_code == 422
    assert hidden.text == missing.text.replace("nowhere", "lab")
