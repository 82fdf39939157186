"""The rights matrix: every endpoint of the API and every page of the
dashboard, asked by bob — a second, hostile user — about alice's things.

- About alice's private module, her run, her token, a cloud nobody shared
  with him, or alice herself, bob gets exactly what a name or id that does
  not exist gets: same status, same headers' type, same body but for the
  name asked about (:class:`AsMissing`).
- What is shared with him (alice's public module, the examples, his own run
  and token) answers as shared; carol, in alice's team, sees ``alice/team``
  as shared too.
- Lists, search, facets and pages (:class:`Shows`) hold what is shared with
  him and nothing of alice's private things.

The matrix is keyed by the app's own routes: an endpoint or page without an
entry fails :func:`test_every_endpoint_and_page_is_in_the_matrix`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.adapters.definitions.loader import load_text
from slipway.domain.modules import Right
from tests.conftest import WebWorld
from tests.integration.test_api_runs import drive
from tests.integration.test_dashboard_pages import login

HTML = {"Accept": "text/html"}
MISSING = {
    "module": "alice/nothing",
    "run": "000000000000",
    "cloud": "nowhere",
    "token": "999999",
    "user": "nobody",
}


@dataclass(frozen=True)
class Probe:
    """One request; ``{module}``, ``{run}``, ``{cloud}``, ``{token}`` and
    ``{user}`` in its path, JSON body, form or text body are filled in.
    ``dashboard``: sent as a browser (HTML, session cookie, the form's CSRF
    field); else as the API with the user's token."""

    method: str
    path: str
    json: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    text: str | None = None
    dashboard: bool = False

    def asks_about(self) -> str:
        """Which of alice's things this probe names: module, run, cloud …"""
        sent = json.dumps([self.path, self.json, self.form, self.text])
        return next(key for key in MISSING if "{" + key + "}" in sent)

    def send(self, tenants: Tenants, user: str, names: dict[str, str]) -> Any:
        def fill(value: str) -> str:
            for key, name in names.items():
                value = value.replace("{" + key + "}", name)
            return value

        client = tenants.browser(user) if self.dashboard else tenants.client
        headers = HTML if self.dashboard else tenants.web.headers(user)
        kwargs: dict[str, Any] = {"headers": headers}
        if self.json is not None:
            kwargs["json"] = json.loads(fill(json.dumps(self.json)))
        if self.text is not None:
            kwargs["content"] = fill(self.text)
        if self.form is not None:
            form = {k: fill(v) for k, v in self.form.items()}
            csrf = tenants.login_csrf(client) if self.path == "/login" else tenants.csrf[user]
            kwargs["data"] = {**form, "csrf_token": csrf}
        return client.request(self.method, fill(self.path), follow_redirects=False, **kwargs)


@dataclass(frozen=True)
class AsMissing:
    """Bob's request about alice's (or nobody's) thing answers as about a
    missing one; about a shared one (``shared``), with ``shared_status``."""

    probe: Probe
    shared: dict[str, str] = field(default_factory=dict)
    shared_status: int | None = None


@dataclass(frozen=True)
class Shows:
    """Bob's answer has ``status``, names each of ``shows`` and nothing of
    alice's private things."""

    probe: Probe
    status: int
    shows: tuple[str, ...] = ()


Check = AsMissing | Shows
PUBLIC = {"module": "alice/public"}
DEBIAN = "examples/images/debian-12"  # the admin's, public with the deploy right
OWN_RUN = {"run": "{own_run}"}

MATRIX: dict[str, list[Check]] = {
    # -- modules: read, search, facets, write, reference ------------------------
    "GET /api/modules": [
        Shows(Probe("GET", "/api/modules?limit=500&q=alice"), 200, ("alice/public",)),
        Shows(Probe("GET", "/api/modules?limit=500&owner=alice"), 200, ("alice/public",)),
        Shows(Probe("GET", "/api/modules?os=alpine"), 200),
        Shows(Probe("GET", "/api/modules?q=secret"), 200),
        Shows(
            Probe("GET", "/api/modules?limit=500&kind=security-group&kind=cloud&kind=catalog"),
            200,
            ("examples/clouds/local",),
        ),
    ],
    "POST /api/modules": [
        AsMissing(
            Probe("POST", "/api/modules?name={module}", text="kind: image\n"),
            {"module": "bob/mine"},
            201,
        ),
        AsMissing(
            Probe("POST", "/api/modules?name=bob/child", text="kind: image\nparent: {module}\n"),
            PUBLIC,
            201,
        ),
        AsMissing(
            Probe(
                "POST",
                "/api/modules?name=bob/component&dry_run=true",
                text="kind: component\nimage: {module}\n",
            ),
            PUBLIC,
            201,  # a dry run answers as the import would, saving nothing
        ),
        AsMissing(
            Probe(
                "POST",
                "/api/modules?name=bob/native",
                text="kind: image\nlogin_user: x\nnative: {{cloud}: {id: x}}\n",
            ),
            {"cloud": "local"},
            201,
        ),
    ],
    "GET /api/modules/{name:path}": [
        AsMissing(Probe("GET", "/api/modules/{module}"), PUBLIC, 200),
        AsMissing(Probe("GET", "/api/modules/{module}@1"), PUBLIC, 200),
    ],
    "GET /api/modules/{name:path}/-/versions": [
        AsMissing(Probe("GET", "/api/modules/{module}/-/versions"), PUBLIC, 200),
    ],
    "GET /api/modules/{name:path}/-/resolved": [
        AsMissing(Probe("GET", "/api/modules/{module}/-/resolved"), PUBLIC, 200),
        AsMissing(Probe("GET", "/api/modules/{module}/-/resolved?cloud=local"), PUBLIC, 200),
    ],
    "GET /api/modules/{name:path}/-/diff": [
        AsMissing(Probe("GET", "/api/modules/{module}/-/diff"), PUBLIC, 200),
        AsMissing(Probe("GET", "/api/modules/{module}/-/diff?from=1&to=1"), PUBLIC, 200),
    ],
    "POST /api/modules/{name:path}/-/copy": [
        AsMissing(
            Probe("POST", "/api/modules/{module}/-/copy", json={"destination": "bob/copy"}),
            PUBLIC,
            201,
        ),
    ],
    "PUT /api/modules/{name:path}/-/rights": [
        # Visible, so the refusal names the right: only the owner shares.
        AsMissing(
            Probe("PUT", "/api/modules/{module}/-/rights", json={"public_rights": ["view"]}),
            PUBLIC,
            403,
        ),
    ],
    # -- clouds and sizes ---------------------------------------------------------
    "GET /api/clouds": [Shows(Probe("GET", "/api/clouds"), 200, ('"name":"local"',))],
    "GET /api/clouds/{name}/flavors": [
        AsMissing(Probe("GET", "/api/clouds/{cloud}/flavors"), {"cloud": "local"}, 200),
    ],
    "GET /api/sizes": [
        Shows(Probe("GET", "/api/sizes?cpu=3&ram=3"), 200, ("local",)),
        AsMissing(Probe("GET", "/api/sizes?cpu=1&cloud={cloud}"), {"cloud": "local"}, 200),
    ],
    # -- users, groups, tokens ------------------------------------------------------
    "GET /api/me": [Shows(Probe("GET", "/api/me"), 200, ('"user":"bob"',))],
    "POST /api/users": [
        AsMissing(Probe("POST", "/api/users", json={"name": "{user}"})),
    ],
    "PUT /api/users/{name}/password": [
        AsMissing(
            Probe("PUT", "/api/users/{user}/password", json={"password": "taken over!"}),
            {"user": "bob"},
            204,
        ),
    ],
    "POST /api/groups": [
        AsMissing(Probe("POST", "/api/groups", json={"name": "mine", "members": ["{user}"]})),
    ],
    "GET /api/tokens": [Shows(Probe("GET", "/api/tokens"), 200, ("tests",))],
    "POST /api/tokens": [Shows(Probe("POST", "/api/tokens", json={"name": "bob-ci"}), 201)],
    "DELETE /api/tokens/{token_id}": [
        AsMissing(Probe("DELETE", "/api/tokens/{token}"), {"token": "{own_token}"}, 204),
    ],
    # -- runs: deploy, read, terminate, events --------------------------------------
    "POST /api/runs": [
        AsMissing(
            Probe("POST", "/api/runs", json={"module": "{module}", "cloud": "local"}),
            {"module": DEBIAN},
            201,
        ),
        AsMissing(
            Probe(
                "POST",
                "/api/runs",
                json={"module": "examples/images/debian-12", "cloud": "{cloud}"},
            ),
            {"cloud": "local"},
            201,
        ),
    ],
    "GET /api/runs": [
        Shows(Probe("GET", "/api/runs?limit=500"), 200, ("{own_run}",)),
        Shows(Probe("GET", "/api/runs?all=true"), 403),
    ],
    "GET /api/runs/{run_id}": [AsMissing(Probe("GET", "/api/runs/{run}"), OWN_RUN, 200)],
    "POST /api/runs/{run_id}/terminate": [
        AsMissing(Probe("POST", "/api/runs/{run}/terminate"), OWN_RUN, 202),
    ],
    "GET /api/runs/{run_id}/events": [
        AsMissing(Probe("GET", "/api/runs/{run}/events"), OWN_RUN, 200),
    ],
    "GET /openapi.json": [Shows(Probe("GET", "/openapi.json"), 200, ("/api/modules",))],
    # -- the dashboard -------------------------------------------------------------
    "GET /static": [Shows(Probe("GET", "/static/app.js", dashboard=True), 200)],
    "GET /login": [Shows(Probe("GET", "/login", dashboard=True), 200, ("Log in",))],
    "POST /login": [
        # A wrong password for alice reads as one for nobody.
        AsMissing(
            Probe(
                "POST",
                "/login",
                form={"username": "{user}", "password": "a guess!", "next": "/"},
                dashboard=True,
            ),
        ),
    ],
    "POST /logout": [Shows(Probe("POST", "/logout", form={}, dashboard=True), 303)],
    "GET /": [Shows(Probe("GET", "/", dashboard=True), 303)],
    "GET /catalog": [
        Shows(Probe("GET", "/catalog?q=alice", dashboard=True), 200, ("alice/public",)),
        Shows(Probe("GET", "/catalog?owner=alice", dashboard=True), 200, ("alice/public",)),
        Shows(Probe("GET", "/catalog?os=alpine", dashboard=True), 200),
        AsMissing(Probe("GET", "/catalog?cloud={cloud}", dashboard=True), {"cloud": "local"}, 200),
    ],
    "GET /images/{name:path}": [
        AsMissing(Probe("GET", "/images/{module}", dashboard=True), PUBLIC, 200),
    ],
    "GET /images/{name:path}/-/deploy": [
        AsMissing(Probe("GET", "/images/{module}/-/deploy", dashboard=True), PUBLIC, 200),
    ],
    "GET /images/{name:path}/-/diff": [
        AsMissing(Probe("GET", "/images/{module}/-/diff?from=1&to=1", dashboard=True), PUBLIC, 200),
    ],
    "POST /images/{name:path}/-/copy": [
        AsMissing(
            Probe(
                "POST", "/images/{module}/-/copy", form={"destination": "bob/copy"}, dashboard=True
            ),
            PUBLIC,
            303,
        ),
    ],
    "POST /runs": [
        AsMissing(
            Probe("POST", "/runs", form={"module": "{module}", "cloud": "local"}, dashboard=True),
            {"module": DEBIAN},
            303,
        ),
    ],
    "GET /runs": [Shows(Probe("GET", "/runs", dashboard=True), 200, ("{own_run}",))],
    "GET /runs/{run_id}": [
        AsMissing(Probe("GET", "/runs/{run}", dashboard=True), OWN_RUN, 200),
        AsMissing(Probe("GET", "/runs/{run}?part=live", dashboard=True), OWN_RUN, 200),
    ],
    "POST /runs/{run_id}/terminate": [
        AsMissing(Probe("POST", "/runs/{run}/terminate", form={}, dashboard=True), OWN_RUN, 303),
    ],
    "GET /clouds": [Shows(Probe("GET", "/clouds", dashboard=True), 200, ("local",))],
}


def routes(app: Any) -> set[str]:
    """``METHOD path`` of every route and mount the app serves."""
    found: set[str] = set()

    def walk(items: Any) -> None:
        for route in items:
            inner = getattr(route, "original_router", None)
            if inner is not None:  # an included router
                walk(inner.routes)
            elif getattr(route, "methods", None):
                found.update(f"{m} {route.path}" for m in route.methods if m != "HEAD")
            else:  # a mount: static files
                found.add(f"GET {route.path}")

    walk(app.routes)
    return found


class Tenants:
    """Alice and bob on one server: alice's private module, one inheriting
    from it, a cloud nobody shared with bob, alice's run and token; bob's own
    finished run and token; and each user's browser, logged in."""

    def __init__(self, world: WebWorld, client: TestClient) -> None:
        self.web, self.client = world, client
        admin = world.services.catalog("admin")
        lab = {
            "lab/catalogs/lab": "kind: catalog\nflavors: [{name: secret-size, cpu: 3, ram: 3}]\n",
            "lab/clouds/lab": "kind: cloud\ndriver: openstack\ncatalog: lab/catalogs/lab\n",
        }
        admin.import_files([load_text(text, f"{n}.yaml", n) for n, text in lab.items()])
        alice = world.services.catalog("alice")
        secret = "kind: image\nparent: alice/private\ndescription: alice's secret project\n"
        alice.import_files(
            [load_text(secret + "os: {distribution: alpine}\n", "s.yaml", "alice/secret")]
        )
        alice.share("alice/public", group=None, group_rights=frozenset(),
                    public_rights=frozenset({Right.VIEW}))  # fmt: skip
        run = client.post(
            "/api/runs",
            json={"module": "alice/private", "cloud": "local"},
            headers=world.headers("alice"),
        )
        own = client.post(
            "/api/runs",
            json={"module": DEBIAN, "cloud": "local", "keep_running": "never"},
            headers=world.headers("bob"),
        )
        assert run.status_code == own.status_code == 201, (run.text, own.text)
        drive(world, own.json()["id"])  # ended: its event stream ends too
        self.private = {
            "module": "alice/private",
            "run": run.json()["id"],
            "cloud": "lab",
            "token": str(world.identity.create_token("alice", "alice-laptop").record.id),
            "user": "alice",
        }
        self.own = {
            "own_run": own.json()["id"],
            "own_token": str(world.identity.create_token("bob", "bob-laptop").record.id),
        }
        self.hidden = (
            "alice/private",
            "alice/secret",
            "alice's secret project",
            "lab/clouds/lab",
            "lab/catalogs/lab",
            "secret-size",
            "alice-laptop",
            self.private["run"],
        )
        self.browsers: dict[str, TestClient] = {}
        self.csrf: dict[str, str] = {}

    def browser(self, user: str) -> TestClient:
        """``user``'s browser, logged in (a client of its own: its own cookies)."""
        if user not in self.browsers:
            browser = TestClient(self.web.app, raise_server_exceptions=False)
            self.csrf[user] = login(browser, user)
            self.browsers[user] = browser
        return self.browsers[user]

    @staticmethod
    def login_csrf(client: TestClient) -> str:
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token
        return token[1]

    def names(self, base: dict[str, str], **overrides: str) -> dict[str, str]:
        """``base`` with ``overrides``; ``{own_run}`` and ``{own_token}`` name bob's."""
        return {key: name.format(**self.own) for key, name in {**base, **overrides}.items()}


@pytest.fixture
def tenants(web_world: WebWorld, client: TestClient) -> Iterator[Tenants]:
    found = Tenants(web_world, client)
    yield found
    for browser in found.browsers.values():
        browser.close()


# The marketplace keeps its rows in SQL only, and the local image store is
# files; their rights are probed by a hostile user of their own in
# test_marketplace_tenants.py, route by route.
MARKETPLACE = re.compile(
    r"^[A-Z]+ (/api/appliances|/api/vos|/vo/|/files/|/marketplace|/vos/|/api/images"
    r"|/api/imagelists)"
)
# Provider sync is for administrators alone: test_sync_tenants.py probes its API.
SYNC = re.compile(r"^[A-Z]+ (/api/subscriptions|/api/syncs)")
# The Sync pages are for administrators alone, on subscriptions kept in SQL
# only: test_sync_pages.py has a hostile user refused on each of them.
SYNC_PAGES = re.compile(r"^[A-Z]+ /sync(/|$)")


def test_every_endpoint_and_page_is_in_the_matrix(web_world: WebWorld) -> None:
    served = {
        r
        for r in routes(web_world.app)
        if not MARKETPLACE.match(r) and not SYNC.match(r) and not SYNC_PAGES.match(r)
    }
    assert served - set(MATRIX) == set(), "routes without an entry in the rights matrix"
    assert set(MATRIX) - served == set(), "entries for routes the app no longer serves"


# A log-in form carries a fresh CSRF token each time it is shown.
_FRESH_TOKEN = re.compile(r'(name="csrf_token" value=)"[^"]+"')


def same_answer(hidden: Any, missing: Any, swap: tuple[str, str]) -> None:
    assert hidden.status_code == missing.status_code, (hidden.text, missing.text)
    assert hidden.status_code >= 400, hidden.text
    assert hidden.headers["content-type"] == missing.headers["content-type"]
    expected = _FRESH_TOKEN.sub(r"\1-", missing.text.replace(*swap))
    assert _FRESH_TOKEN.sub(r"\1-", hidden.text) == expected


def shows_nothing_hidden(tenants: Tenants, answer: Any) -> None:
    """None of alice's private things is named in ``answer``."""
    leaked = [marker for marker in tenants.hidden if marker in answer.text]
    assert leaked == [], answer.text


@pytest.mark.parametrize("route", sorted(MATRIX))
def test_bob_learns_nothing_of_alices_private_things(tenants: Tenants, route: str) -> None:
    for check in MATRIX[route]:
        probe = check.probe
        if isinstance(check, Shows):
            answer = probe.send(tenants, "bob", tenants.names({}))
            assert answer.status_code == check.status, answer.text
            for expected in check.shows:
                assert expected.format(**tenants.own) in answer.text
            shows_nothing_hidden(tenants, answer)
            continue
        key = probe.asks_about()
        hidden = probe.send(tenants, "bob", tenants.names(tenants.private))
        missing = probe.send(tenants, "bob", tenants.names(MISSING))
        same_answer(hidden, missing, (MISSING[key], tenants.private[key]))
        if check.shared_status is not None:
            shared = probe.send(tenants, "bob", tenants.names(tenants.private, **check.shared))
            assert shared.status_code == check.shared_status, shared.text
            shows_nothing_hidden(tenants, shared)


GROUP_READS = [
    (route, check)
    for route, checks in sorted(MATRIX.items())
    for check in checks
    if isinstance(check, AsMissing) and check.shared == PUBLIC and check.probe.method == "GET"
]


@pytest.mark.parametrize(
    ("route", "check"), GROUP_READS, ids=[f"{r} {c.probe.path}" for r, c in GROUP_READS]
)
def test_a_module_shared_with_a_group_reads_as_shared_for_its_members_only(
    tenants: Tenants, route: str, check: AsMissing
) -> None:
    team = tenants.names(tenants.private, module="alice/team")
    assert check.probe.send(tenants, "carol", team).status_code == check.shared_status
    hidden = check.probe.send(tenants, "bob", team)
    missing = check.probe.send(tenants, "bob", tenants.names(MISSING))
    same_answer(hidden, missing, (MISSING["module"], "alice/team"))
