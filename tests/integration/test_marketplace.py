"""The marketplace end to end over the API, on SQLite and PostgreSQL: an
image author registers a stored image, a VO manager endorses and publishes
it, and an anonymous subscriber fetches, verifies and downloads — with the
list verifying in Slipway's verifier and in OpenSSL."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cryptography.hazmat.primitives import serialization

from slipway.adapters.imagelists import (
    TrustPolicy,
    load_ca_dir,
    parse_image_list,
    verify_image_list,
)
from slipway.adapters.imagelists.trust import distinguished_name
from slipway.domain.imagelists import PreviousAcceptance
from tests.market_world import PUBLIC_URL, VO, MarketWorld, stored_image

OPENSSL = shutil.which("openssl")


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MarketWorld]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'slipway.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    yield MarketWorld(tmp_path, url)


def register(world: MarketWorld, user: str, name: str, version: str, **body: Any) -> Any:
    return world.call(
        user, "POST", f"/api/appliances/{name}/versions", json={"version": version, **body}
    )


def published_appliance(world: MarketWorld, image: str = "web-1", version: str = "1.0") -> str:
    sha512 = stored_image(world.data_dir, image)
    answer = register(
        world,
        "alice",
        "alice/web",
        version,
        files=[{"image": image}],
        appliance={"title": "Web server", "description": "nginx on Debian"},
        details={"core_minimum": 1, "ram_minimum": 512},
    )
    assert answer.status_code == 201, answer.text
    shared = world.call("alice", "PUT", "/api/appliances/alice/web/rights", json={
        "public_rights": "view"
    })  # fmt: skip
    assert shared.status_code == 200, shared.text
    return sha512


def vo_with_manager(world: MarketWorld) -> None:
    made = world.call("admin", "POST", "/api/vos", json={"name": VO, "manager": "bob"})
    assert made.status_code == 201, made.text


def trust(world: MarketWorld, folder: Path) -> TrustPolicy:
    world.ca.write_dir(folder)
    subject = distinguished_name(world.endorser.certificate.subject)
    return TrustPolicy(load_ca_dir(folder), subject)


def test_author_manager_and_subscriber_each_do_their_part(
    world: MarketWorld, tmp_path: Path
) -> None:
    sha512 = published_appliance(world)
    vo_with_manager(world)
    assert world.call("bob", "PUT", f"/api/vos/{VO}/draft/alice/web", json={
        "version": "1.0"
    }).status_code == 204  # fmt: skip
    published = world.call("bob", "POST", f"/api/vos/{VO}/publications", json={"days": 10})
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 1

    # An anonymous subscriber fetches the signed list and verifies it.
    fetched = world.call(None, "GET", f"/vo/{VO}/image.list")
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "application/pkcs7-mime"
    now = datetime.now(UTC)
    verified = verify_image_list(fetched.content, trust(world, tmp_path / "ca"), now=now)
    image_list = verified.image_list
    assert image_list.vo == VO and image_list.version == "1"
    assert image_list.uri == f"{PUBLIC_URL}/vo/{VO}/image.list"
    assert timedelta(days=9) < image_list.expires - now <= timedelta(days=10)
    (image,) = image_list.images
    assert image.sha512 == sha512 and image.version == "1.0"
    assert (image.core_minimum, image.ram_minimum) == (1, 512)
    assert (image.os_name, image.os_version) == ("Debian", "12")
    assert image.uri == f"{PUBLIC_URL}/files/sha512/{sha512}"

    # The image downloads by its URL, whole and by range, and is what was listed.
    path = image.uri.removeprefix(PUBLIC_URL)
    whole = world.call(None, "GET", path)
    assert whole.status_code == 200
    assert hashlib.sha512(whole.content).hexdigest() == sha512
    assert whole.headers["etag"] == f'"{sha512}"'
    assert len(whole.content) == image.size
    part = world.call(None, "GET", path, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == whole.content[10:20]
    again = world.call(None, "GET", path, headers={"If-None-Match": f'"{sha512}"'})
    assert again.status_code == 304

    # Conditional GETs of the list; its JSON is exactly what the signature covers.
    etag = fetched.headers["etag"]
    assert world.call(None, "GET", f"/vo/{VO}/image.list", headers={
        "If-None-Match": etag
    }).status_code == 304  # fmt: skip
    assert world.call(None, "GET", f"/vo/{VO}/image.list", headers={
        "If-Modified-Since": fetched.headers["last-modified"]
    }).status_code == 304  # fmt: skip
    document = world.call(None, "GET", f"/vo/{VO}/image.list.json")
    assert document.status_code == 200
    assert document.content.replace(b"\r\n", b"\n") in fetched.content.replace(b"\r\n", b"\n")

    # The appliance page says which list endorses which version.
    page = world.call(None, "GET", "/api/appliances/alice/web").json()
    assert page["endorsed_by"] == [{"vo": VO, "version": "1.0", "list_version": 1}]
    assert page["versions"][0]["checks"] == {
        "image check": "clean",
        "image test": "passed, SSH after 42 s",
    }
    found = world.call(None, "GET", "/api/appliances", params={"vo": VO}).json()
    assert [a["name"] for a in found["appliances"]] == ["alice/web"]


@pytest.mark.skipif(OPENSSL is None, reason="openssl is not installed")
def test_a_published_list_verifies_with_openssl(world: MarketWorld, tmp_path: Path) -> None:
    published_appliance(world)
    vo_with_manager(world)
    world.market("bob").endorse(VO, "alice/web@1.0")
    world.market("bob").publish(VO)
    signed = tmp_path / "image.list"
    signed.write_bytes(world.call(None, "GET", f"/vo/{VO}/image.list").content)
    ca_dir = tmp_path / "ca"
    ca_dir.mkdir()
    pem = ca_dir / "ca.pem"
    pem.write_bytes(world.ca.certificate.public_bytes(serialization.Encoding.PEM))
    assert OPENSSL is not None
    hashed = (
        subprocess.run(
            [OPENSSL, "x509", "-hash", "-noout", "-in", str(pem)], capture_output=True, check=True
        )
        .stdout.decode()
        .strip()
    )
    pem.rename(ca_dir / f"{hashed}.0")
    done = subprocess.run(
        [OPENSSL, "cms", "-verify", "-purpose", "any", "-CApath", str(ca_dir),
         "-in", str(signed), "-out", str(tmp_path / "content.json")],
        capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    content = (tmp_path / "content.json").read_bytes()
    assert parse_image_list(content).vo == VO


def test_a_new_version_keeps_the_list_and_image_identifiers(
    world: MarketWorld, tmp_path: Path
) -> None:
    published_appliance(world)
    vo_with_manager(world)
    bob = world.market("bob")
    bob.endorse(VO, "alice/web@1.0")
    first = parse_image_list(bob.publish(VO).document)
    stored_image(world.data_dir, "web-2")
    assert (
        register(world, "alice", "alice/web", "1.1", files=[{"image": "web-2"}]).status_code == 201
    )
    bob.endorse(VO, "alice/web@1.1")
    # A draft changes nothing that is served until it is published.
    served = world.call(None, "GET", f"/vo/{VO}/image.list").content
    assert served == bob.published(VO, 1).signed
    second = bob.publish(VO, comment="web 1.1")
    listed = parse_image_list(second.document)
    assert (listed.identifier, listed.version) == (first.identifier, "2")
    assert [i.identifier for i in listed.images] == [i.identifier for i in first.images]
    assert [i.version for i in listed.images] == ["1.1"]
    # A subscriber that accepted version 1 accepts version 2 from the same place.
    policy = trust(world, tmp_path / "ca")
    fetched = world.call(None, "GET", f"/vo/{VO}/image.list").content
    verify_image_list(
        fetched, policy, now=datetime.now(UTC), previous=PreviousAcceptance(first.identifier, "1")
    )
    history = world.call(None, "GET", f"/api/vos/{VO}/publications").json()
    assert [(h["version"], h["author"], h["comment"]) for h in history] == [
        (2, "bob", "web 1.1"),
        (1, "bob", ""),
    ]
    old = world.call(None, "GET", f"/vo/{VO}/image.list", params={"version": 1})
    assert old.content == bob.published(VO, 1).signed


def test_a_failed_publish_leaves_the_previous_list_served(world: MarketWorld) -> None:
    published_appliance(world)
    vo_with_manager(world)
    bob = world.market("bob")
    bob.endorse(VO, "alice/web@1.0")
    bob.publish(VO)
    served = world.call(None, "GET", f"/vo/{VO}/image.list").content
    # The operator's key file is replaced by another key: signing must refuse.
    other = world.ca.issue().key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (world.root / "endorser.key").write_bytes(other)
    refused = world.call("bob", "POST", f"/api/vos/{VO}/publications", json={})
    assert refused.status_code == 422
    assert "does not match the certificate" in refused.json()["detail"]
    assert "PRIVATE" not in refused.text
    assert world.call(None, "GET", f"/vo/{VO}/image.list").content == served
    assert [
        p["version"] for p in world.call(None, "GET", f"/api/vos/{VO}/publications").json()
    ] == [1]


def test_obsoleting_stops_serving_until_the_next_publish(world: MarketWorld) -> None:
    published_appliance(world)
    vo_with_manager(world)
    bob = world.market("bob")
    bob.endorse(VO, "alice/web@1.0")
    bob.publish(VO)
    assert world.call("bob", "POST", f"/api/vos/{VO}/obsolete").status_code == 204
    gone = world.call(None, "GET", f"/vo/{VO}/image.list")
    assert gone.status_code == 410
    bob.withdraw(VO, "alice/web")
    bob.publish(VO)
    back = world.call(None, "GET", f"/vo/{VO}/image.list")
    assert back.status_code == 200
    assert parse_image_list(bob.published(VO).document).images == ()


def test_endorsing_needs_a_public_unexpired_version(world: MarketWorld) -> None:
    stored_image(world.data_dir, "web-1")
    soon = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
    made = register(
        world, "alice", "alice/web", "1.0", files=[{"image": "web-1"}], appliance={"title": "W"},
        expires=soon,
    )  # fmt: skip
    assert made.status_code == 201
    vo_with_manager(world)
    private = world.call("bob", "PUT", f"/api/vos/{VO}/draft/alice/web", json={"version": "1.0"})
    assert private.status_code == 404  # bob cannot even see it yet
    world.market("alice").share("alice/web", public_rights=frozenset({_view()}))
    import time

    time.sleep(1.2)
    expired = world.call("bob", "PUT", f"/api/vos/{VO}/draft/alice/web", json={"version": "1.0"})
    assert expired.status_code == 409 and "expired" in expired.json()["detail"]


def test_a_stored_image_must_pass_its_checks(world: MarketWorld) -> None:
    stored_image(world.data_dir, "broken", findings=[{"id": "IMG-SSH-001", "severity": "error"}])
    refused = register(world, "alice", "alice/x", "1", files=[{"image": "broken"}], appliance={
        "title": "X"
    })  # fmt: skip
    assert refused.status_code == 409 and "IMG-SSH-001" in refused.json()["detail"]
    stored_image(world.data_dir, "unbootable", passed=False)
    refused = register(world, "alice", "alice/x", "1", files=[{"image": "unbootable"}], appliance={
        "title": "X"
    })  # fmt: skip
    assert refused.status_code == 409 and "boot test" in refused.json()["detail"]
    assert world.call("alice", "GET", "/api/appliances/alice/x").status_code == 404


class _ImageServer(BaseHTTPRequestHandler):
    body: ClassVar[bytes] = b"\x00qcow" * 20000
    served: ClassVar[int] = 0

    def do_GET(self) -> None:
        type(self).served += 1
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def image_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ImageServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/web.qcow2"
    server.shutdown()
    server.server_close()


def test_a_url_is_downloaded_once_to_hash_it_where_the_operator_allows(
    tmp_path: Path, image_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = MarketWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}")
    # By default the server does not fetch from its own network.
    refused = register(world, "alice", "alice/web", "1", files=[{"url": image_url}], appliance={
        "title": "Web"
    })  # fmt: skip
    assert refused.status_code == 422 and "loopback" in refused.json()["detail"]
    from dataclasses import replace

    from slipway import bootstrap

    allowed = replace(world.settings, fetch_private_addresses="yes")
    market = bootstrap.marketplace_service(allowed, "alice")
    from slipway.services.marketplace import FileSource, NewAppliance

    made = market.register(
        "alice/web", "1", [FileSource(url=image_url)], appliance=NewAppliance("Web")
    )
    (image,) = made.files
    assert image.verified and image.sha512 == hashlib.sha512(_ImageServer.body).hexdigest()
    assert image.size == len(_ImageServer.body) and image.format == "qcow2"
    from slipway.errors import Conflict

    with pytest.raises(Conflict, match="SHA-512"):
        market.register("alice/web", "2", [FileSource(url=image_url, sha512="0" * 128)])
    # With both given, nothing is downloaded and the file is marked unverified.
    trusted = market.register(
        "alice/web", "3", [FileSource(url="https://example.org/x.ova", sha512="a" * 128, size=9)]
    )
    assert not trusted.files[0].verified and trusted.files[0].format == "ova"


def _view() -> Any:
    from slipway.domain.modules import Right

    return Right.VIEW


def test_the_dashboard_forms_do_the_authors_and_managers_part(world: MarketWorld) -> None:
    stored_image(world.data_dir, "web-1")
    vo_with_manager(world)
    form = {"name": "alice/web", "version": "1.0", "image": "web-1", "title": "Web"}
    made = world.call("alice", "POST", "/marketplace", data={**form, "public": "yes"},
                      follow_redirects=False)  # fmt: skip
    assert made.status_code == 303 and made.headers["location"] == "/marketplace/alice/web"
    page = world.call("bob", "GET", f"/vos/{VO}", headers={"Accept": "text/html"}).text
    assert "alice/web@1.0" in page and "Sign and publish" in page
    endorsed = world.call("bob", "POST", f"/vos/{VO}/draft", data={"appliance": "alice/web@1.0"},
                          follow_redirects=False)  # fmt: skip
    assert endorsed.status_code == 303
    published = world.call("bob", "POST", f"/vos/{VO}/publish", data={"days": "7"},
                           follow_redirects=False)  # fmt: skip
    assert published.status_code == 303
    (listed,) = parse_image_list(world.market("bob").published(VO).document).images
    assert listed.version == "1.0"
    assert (
        world.call("bob", "POST", f"/vos/{VO}/obsolete", follow_redirects=False).status_code == 303
    )
    assert world.call(None, "GET", f"/vo/{VO}/image.list").status_code == 410


def test_any_list_verifies_over_the_api_against_the_servers_cas(world: MarketWorld) -> None:
    published_appliance(world)
    vo_with_manager(world)
    world.market("bob").endorse(VO, "alice/web@1.0")
    signed = world.market("bob").publish(VO).signed
    dn = distinguished_name(world.endorser.certificate.subject).slash()
    accepted = world.call("mallory", "POST", "/api/imagelists/verify",
                          params={"endorser_dn": dn}, content=signed)  # fmt: skip
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["images"][0]["version"] == "1.0"
    tampered = signed.replace(b'"hv:version": "1.0"', b'"hv:version": "6.6"')
    assert tampered != signed
    refused = world.call("mallory", "POST", "/api/imagelists/verify",
                         params={"endorser_dn": dn}, content=tampered)  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["reason"] == "digest-mismatch"
    someone = {"endorser_dn": "/DC=org/CN=someone else"}
    other = world.call("mallory", "POST", "/api/imagelists/verify", params=someone, content=signed)
    assert other.status_code == 422
    assert "endorser-mismatch" in [e["reason"] for e in other.json()["errors"]]
    anonymous = world.call(None, "POST", "/api/imagelists/verify",
                           params={"endorser_dn": dn}, content=signed)  # fmt: skip
    assert anonymous.status_code == 401


def test_a_taken_version_is_refused_before_anything_is_downloaded(
    tmp_path: Path, image_url: str
) -> None:
    from slipway import bootstrap
    from slipway.errors import Conflict
    from slipway.services.marketplace import FileSource, NewAppliance

    world = MarketWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}", fetch_private=True)
    market = bootstrap.marketplace_service(world.settings, "alice")
    market.register("alice/web", "1", [FileSource(url=image_url)], appliance=NewAppliance("Web"))
    served = _ImageServer.served
    with pytest.raises(Conflict, match="already exists"):
        market.register("alice/web", "1", [FileSource(url=image_url)])
    assert _ImageServer.served == served
