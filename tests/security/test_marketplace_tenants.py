"""A second, hostile user of the marketplace: mallory may read what is
public and nothing else, changes nothing of alice's or of a VO's, cannot make
the server fetch from its own network, and is refused cheaply."""

from __future__ import annotations

import hashlib
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from slipway.domain.modules import Right
from tests.market_world import VO, MarketWorld, stored_image


@pytest.fixture
def world(tmp_path: Path) -> MarketWorld:
    world = MarketWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}")
    stored_image(world.data_dir, "web-1")
    made = world.call("alice", "POST", "/api/appliances/alice/web/versions", json={
        "version": "1.0", "files": [{"image": "web-1"}], "appliance": {"title": "Web"}
    })  # fmt: skip
    assert made.status_code == 201, made.text
    assert world.call("admin", "POST", "/api/vos", json={
        "name": VO, "manager": "bob"
    }).status_code == 201  # fmt: skip
    return world


def test_a_private_appliance_and_its_file_answer_as_missing(world: MarketWorld) -> None:
    page = world.call("alice", "GET", "/api/appliances/alice/web").json()
    url = page["versions"][0]["files"][0]["download_url"]
    path = url.split("slipway.test", 1)[1]
    for user in ("mallory", None):
        assert world.call(user, "GET", "/api/appliances/alice/web").status_code == 404
        assert world.call(user, "GET", path).status_code == 404
        assert world.call(user, "GET", "/api/appliances").json()["total"] == 0
    assert world.call("alice", "GET", path).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/appliances/alice/web/versions",
         {"version": "6.6.6", "files": [{"image": "web-1"}]}),
        ("POST", "/api/appliances/alice/evil/versions",
         {"version": "1", "files": [{"image": "web-1"}], "appliance": {"title": "Evil"}}),
        ("PUT", "/api/appliances/alice/web/rights", {"public_rights": "view,edit"}),
        ("POST", "/api/vos", {"name": "evil.example.org", "manager": "mallory"}),
        ("PUT", f"/api/vos/{VO}/members/mallory", {"role": "manager"}),
        ("DELETE", f"/api/vos/{VO}/members/bob", None),
        ("PUT", f"/api/vos/{VO}/draft/alice/web", {"version": "1.0"}),
        ("POST", f"/api/vos/{VO}/publications", {}),
        ("POST", f"/api/vos/{VO}/obsolete", None),
    ],
)  # fmt: skip
def test_mallory_changes_nothing(
    world: MarketWorld, method: str, path: str, body: dict[str, object] | None
) -> None:
    world.market("alice").share("alice/web", public_rights=frozenset())
    before = world.call("admin", "GET", f"/api/vos/{VO}").json()
    answer = world.call("mallory", method, path, json=body)
    assert answer.status_code in (403, 404), answer.text
    anonymous = world.call(None, method, path, json=body)
    assert anonymous.status_code in (401, 403, 404), anonymous.text
    assert world.call("admin", "GET", f"/api/vos/{VO}").json() == before
    assert [v["version"] for v in world.call("alice", "GET", "/api/appliances/alice/web").json()[
        "versions"
    ]] == ["1.0"]  # fmt: skip
    assert world.call("admin", "GET", "/api/appliances/alice/evil").status_code == 404


def test_a_public_appliance_is_still_not_mallorys_to_change(world: MarketWorld) -> None:
    world.call("alice", "PUT", "/api/appliances/alice/web/rights", json={"public_rights": "view"})
    assert world.call("mallory", "GET", "/api/appliances/alice/web").status_code == 200
    answer = world.call("mallory", "POST", "/api/appliances/alice/web/versions", json={
        "version": "9", "files": [{"image": "web-1"}]
    })  # fmt: skip
    assert answer.status_code == 403


def test_outsiders_do_not_see_a_vos_members_or_draft(world: MarketWorld) -> None:
    world.call("alice", "PUT", "/api/appliances/alice/web/rights", json={"public_rights": "view"})
    world.market("bob").endorse(VO, "alice/web@1.0")
    for user in ("mallory", None):
        seen = world.call(user, "GET", f"/api/vos/{VO}").json()
        assert seen["members"] is None and seen["draft"] is None
    world.market("bob").set_member(VO, "mallory", None)
    world.call("bob", "PUT", f"/api/vos/{VO}/members/alice", json={"role": "member"})
    assert (
        world.call("alice", "GET", f"/api/vos/{VO}").json()["draft"][0]["appliance"] == "alice/web"
    )


def test_the_last_manager_stays(world: MarketWorld) -> None:
    answer = world.call("bob", "DELETE", f"/api/vos/{VO}/members/bob")
    assert answer.status_code == 409 and "last manager" in answer.json()["detail"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://localhost:5432/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8000/files",
        "http://10.0.0.8/image.qcow2",
    ],
)
def test_the_server_does_not_fetch_from_its_own_network(world: MarketWorld, url: str) -> None:
    started = time.monotonic()
    answer = world.call("mallory", "POST", "/api/appliances/mallory/probe/versions", json={
        "version": "1", "files": [{"url": url}], "appliance": {"title": "Probe"}
    })  # fmt: skip
    assert answer.status_code == 422, answer.text
    assert "does not fetch from or send to its own network" in answer.json()["detail"]
    assert time.monotonic() - started < 2
    assert world.call("mallory", "GET", "/api/appliances/mallory/probe").status_code == 404


def test_an_untested_stored_image_is_refused_over_the_api(world: MarketWorld) -> None:
    stored_image(world.data_dir, "untested", passed=None)
    answer = world.call("alice", "POST", "/api/appliances/alice/web/versions", json={
        "version": "2", "files": [{"image": "untested"}]
    })  # fmt: skip
    assert answer.status_code == 409
    assert "slipway image test untested" in answer.json()["hint"]


@pytest.mark.parametrize(
    "body",
    [
        {"version": "1", "files": [{"image": "web-1"}], "appliance": {"title": "A\x1b[2J"}},
        {"version": "../1", "files": [{"image": "web-1"}], "appliance": {"title": "A"}},
        {"version": "1", "files": [{"image": "../../etc/passwd"}], "appliance": {"title": "A"}},
        {"version": "1", "files": [{"url": "file:///etc/passwd"}], "appliance": {"title": "A"}},
        {"version": "1", "files": [{"image": "web-1"}] * 17, "appliance": {"title": "A"}},
        {"version": "1", "files": [], "appliance": {"title": "A"}},
        {"version": "1", "files": [{"image": "web-1"}], "appliance": {"title": "A"},
         "details": {"ram_minimum": -5}},
        {"version": "1", "files": [{"image": "web-1"}], "appliance": {"title": "A"},
         "details": {"evil": "x"}},
        {"version": "1", "files": [{"image": "web-1"}], "appliance": {"title": "\u202eA"}},
    ],
)  # fmt: skip
def test_hostile_registrations_are_refused(world: MarketWorld, body: dict[str, object]) -> None:
    answer = world.call("mallory", "POST", "/api/appliances/mallory/x/versions", json=body)
    assert answer.status_code == 422, answer.text
    assert world.call("mallory", "GET", "/api/appliances/mallory/x").status_code == 404


def test_hostile_vo_names_are_refused(world: MarketWorld) -> None:
    for name in ("../etc", "VO.Example", "a" * 300, "vo..example", "-vo.example"):
        answer = world.call("admin", "POST", "/api/vos", json={"name": name, "manager": "bob"})
        assert answer.status_code == 422, (name, answer.text)


def test_routes_all_have_a_hostile_probe(world: MarketWorld) -> None:
    """Every marketplace route is probed above (the rights matrix leaves them here)."""
    from tests.security.test_rights_matrix import MARKETPLACE, routes

    probed = {
        "GET /api/appliances", "GET /api/appliances/{name:path}",
        "POST /api/appliances/{name:path}/versions", "PUT /api/appliances/{name:path}/rights",
        "GET /api/vos", "POST /api/vos", "GET /api/vos/{vo}",
        "PUT /api/vos/{vo}/members/{user}", "DELETE /api/vos/{vo}/members/{user}",
        "PUT /api/vos/{vo}/draft/{appliance:path}", "DELETE /api/vos/{vo}/draft/{appliance:path}",
        "POST /api/vos/{vo}/publications", "GET /api/vos/{vo}/publications",
        "POST /api/vos/{vo}/obsolete", "GET /vo/{vo}/image.list", "GET /vo/{vo}/image.list.json",
        "GET /files/sha512/{sha512}", "GET /marketplace", "GET /marketplace/{name:path}",
        "GET /vos/{vo}", "GET /api/images", "GET /api/images/{name}", "POST /api/images",
        "POST /marketplace", "POST /vos/{vo}/draft", "POST /vos/{vo}/publish",
        "POST /vos/{vo}/obsolete", "POST /api/imagelists/verify",
        "POST /api/appliances/{name:path}/artifacts",
    }  # fmt: skip
    served = {r for r in routes(world.client.app) if MARKETPLACE.match(r)}
    assert served == probed


@pytest.mark.parametrize(
    "path",
    [
        "/api/appliances/{name}",
        "/api/vos/" + VO + "/draft/{name}",
    ],
)
def test_a_hidden_appliance_answers_exactly_as_a_missing_one(world: MarketWorld, path: str) -> None:
    world.market("alice").share("alice/web", public_rights=frozenset())
    method = "GET" if path.startswith("/api/appliances") else "PUT"
    user = "mallory" if method == "GET" else "bob"
    body = None if method == "GET" else {"version": "1.0"}
    hidden = world.call(user, method, path.format(name="alice/web"), json=body)
    missing = world.call(user, method, path.format(name="alice/none"), json=body)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.text == missing.text.replace("alice/none", "alice/web")


def test_the_dashboard_pages_show_mallory_only_what_is_public(world: MarketWorld) -> None:
    html = {"Accept": "text/html"}
    world.market("bob").set_member(VO, "alice", None)
    hidden = world.call("mallory", "GET", "/marketplace/alice/web", headers=html)
    missing = world.call("mallory", "GET", "/marketplace/alice/none", headers=html)
    assert hidden.status_code == missing.status_code == 404
    assert "alice/web" not in world.call("mallory", "GET", "/marketplace", headers=html).text
    world.market("alice").share("alice/web", public_rights=frozenset({Right.VIEW}))
    world.market("bob").endorse(VO, "alice/web@1.0")
    world.market("bob").publish(VO)
    listed = world.call(None, "GET", "/marketplace", params={"vo": VO}, headers=html)
    assert listed.status_code == 200 and "alice/web" in listed.text
    page = world.call(None, "GET", "/marketplace/alice/web", headers=html).text
    sha512 = world.market("alice").appliance("alice/web").versions[0].files[0].sha512
    assert sha512[:24] in page and f"endorsed by {VO} (list 1)" in page
    vo_page = world.call("mallory", "GET", f"/vos/{VO}", headers=html).text
    assert "alice/web@1.0" in vo_page  # the published list is public
    assert "Draft" not in vo_page and "Members" not in vo_page
    assert "Draft" in world.call("bob", "GET", f"/vos/{VO}", headers=html).text


def test_only_an_admin_imports_into_the_local_image_store(
    world: MarketWorld, tmp_path: Path
) -> None:
    image = tmp_path / "upload.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(image), "16M"], check=True)
    body = image.read_bytes()
    for user, status in (("mallory", 403), (None, 401)):
        answer = world.call(user, "POST", "/api/images", params={"name": "evil"}, content=body)
        assert answer.status_code == status, answer.text
    assert world.call(None, "GET", "/api/images").status_code == 401
    assert "evil" not in [i["name"] for i in world.call("mallory", "GET", "/api/images").json()]
    bad = world.call("admin", "POST", "/api/images", params={"name": "../x"}, content=body)
    assert bad.status_code == 422
    made = world.call("admin", "POST", "/api/images", params={"name": "upload"}, content=body)
    assert made.status_code == 201, made.text
    assert made.json()["sha512"] == hashlib.sha512(body).hexdigest()
    assert made.json()["check"]["has_errors"] is True  # an empty disk: nothing boots from it
    shown = world.call("mallory", "GET", "/api/images/upload").json()
    assert shown["name"] == "upload" and shown["tested"] is None
    assert not list((world.data_dir / "images").glob(".upload.*"))
    again = world.call("admin", "POST", "/api/images", params={"name": "upload"}, content=body)
    assert again.status_code == 409


def test_an_image_import_is_capped_before_it_is_read(world: MarketWorld) -> None:
    from slipway.entrypoints.api.images import MAX_IMAGE_BYTES

    answer = world.call(
        "admin",
        "POST",
        "/api/images",
        params={"name": "huge"},
        headers={"Content-Length": str(MAX_IMAGE_BYTES + 1)},
        content=b"",
    )
    assert answer.status_code == 413


@pytest.mark.parametrize(
    ("path", "form"),
    [
        (f"/vos/{VO}/draft", {"appliance": "alice/web@1.0"}),
        (f"/vos/{VO}/draft", {"withdraw": "alice/web"}),
        (f"/vos/{VO}/publish", {"days": "30"}),
        (f"/vos/{VO}/obsolete", {}),
        ("/marketplace", {"name": "alice/web", "version": "6", "image": "web-1"}),
    ],
)
def test_mallorys_dashboard_forms_change_nothing(
    world: MarketWorld, path: str, form: dict[str, str]
) -> None:
    world.market("alice").share("alice/web", public_rights=frozenset({Right.VIEW}))
    world.market("bob").endorse(VO, "alice/web@1.0")
    world.market("bob").publish(VO)
    before = world.call("admin", "GET", f"/api/vos/{VO}").json()
    answer = world.call("mallory", "POST", path, data=form, follow_redirects=False)
    assert answer.status_code == 403, answer.text
    assert world.call(None, "POST", path, data=form, follow_redirects=False).status_code in (
        303,  # the dashboard sends an anonymous visitor to log in
        401,
    )
    assert world.call("admin", "GET", f"/api/vos/{VO}").json() == before
    versions = world.call("alice", "GET", "/api/appliances/alice/web").json()["versions"]
    assert [v["version"] for v in versions] == ["1.0"]


class _Dripping(BaseHTTPRequestHandler):
    """Sends a header, then nothing until the test lets it go."""

    release: ClassVar[threading.Event] = threading.Event()

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000000")
        self.end_headers()
        self.wfile.write(b"x")
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, *_: object) -> None:
        pass


def test_a_slow_download_holds_one_slot_of_its_user_only(tmp_path: Path) -> None:
    world = MarketWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}", fetch_private=True)
    stored_image(world.data_dir, "web-1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Dripping)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/slow.qcow2"
    body = {"version": "1", "files": [{"url": url}], "appliance": {"title": "Slow"}}
    first: list[object] = []
    held = threading.Thread(
        target=lambda: first.append(
            world.call("mallory", "POST", "/api/appliances/mallory/slow/versions", json=body)
        )
    )
    held.start()
    try:
        time.sleep(1.0)  # mallory's first download now waits on the server
        again = world.call("mallory", "POST", "/api/appliances/mallory/slow2/versions", json=body)
        assert again.status_code == 429 and again.headers["retry-after"] == "30"
        started = time.monotonic()
        other = world.call("alice", "POST", "/api/appliances/alice/web/versions", json={
            "version": "1", "files": [{"image": "web-1"}], "appliance": {"title": "Web"}
        })  # fmt: skip
        assert other.status_code == 201 and time.monotonic() - started < 5
    finally:
        _Dripping.release.set()
        held.join(60)
        server.shutdown()
        server.server_close()


def test_verifying_a_list_takes_the_users_slow_work_slot_not_the_log_in_threads(
    world: MarketWorld,
) -> None:
    """A user already holding their slot (a download, a push) waits for it;
    the threads Argon2 log-ins run in are never taken by list parsing."""
    busy: set[str] = world.client.app.state.downloading
    busy.add("mallory")
    try:
        answer = world.call("mallory", "POST", "/api/imagelists/verify",
                            params={"endorser_dn": "/DC=org/CN=x"}, content=b"{}")  # fmt: skip
        assert answer.status_code == 429
    finally:
        busy.discard("mallory")
