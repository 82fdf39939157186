"""A registry that lies or stalls is refused, each time for its own reason,
quickly, with nothing left in the target folder and nothing written outside
it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.adapters.oci import (
    MAX_MANIFEST_BYTES,
    RegistryCredentials,
    Timeouts,
    disk_image_annotations,
    pull_disk_image,
    push_disk_image,
)
from slipway.errors import ArtifactRejected, RegistryError
from tests.integration.oci.scripted_registry import (
    EMPTY_DIGEST,
    MANIFEST_TYPE,
    Exchange,
    ScriptedRegistry,
    digest_of,
    disk_manifest,
)

DISK = b"QFI\xfb" + bytes(range(256)) * 64
TITLE = {"org.opencontainers.image.title": "disk.qcow2"}
MANIFEST_PATH = "/v2/evil/disk/manifests/1"
BLOB_PATH = f"/v2/evil/disk/blobs/{digest_of(DISK)}"
# Short enough that a client which waits on a held connection fails the
# test's time bound; long enough for a loaded machine.
QUICK = Timeouts(connect=5, read=5, small_body=5, min_rate=1024, rate_window=0.5)


@pytest.fixture
def hostile() -> Iterator[ScriptedRegistry]:
    server = ScriptedRegistry()
    yield server
    server.stop()


def serve(raw: bytes, **headers: str) -> object:
    return lambda exchange: exchange.send(
        200, raw, headers={"Content-Type": MANIFEST_TYPE, **headers}
    )


def pull_refused(
    hostile: ScriptedRegistry, target: Path, reference: str = "evil/disk:1"
) -> ArtifactRejected:
    """Pull, expecting a refusal within 3 s that leaves ``target`` empty."""
    started = time.monotonic()
    with pytest.raises(ArtifactRejected) as refused:
        pull_disk_image(hostile.reference(reference), target, timeouts=QUICK)
    assert time.monotonic() - started < 3
    assert list(target.iterdir()) == []
    return refused.value


def test_a_blob_whose_bytes_are_not_its_digest_is_refused_naming_both(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    forged = DISK[:-1] + b"!"
    hostile.route("GET", MANIFEST_PATH, serve(disk_manifest([(DISK, len(DISK), TITLE)])))
    hostile.route("GET", BLOB_PATH, lambda exchange: exchange.send(200, forged))

    refused = pull_refused(hostile, tmp_path)

    assert refused.reason == "digest-mismatch"
    assert f"expected {digest_of(DISK)}, received {digest_of(forged)}" in refused.message


def test_a_blob_longer_than_declared_is_cut_off_at_the_first_byte_too_many(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    def endless(exchange: Exchange) -> None:
        exchange.start(200, length=-1)
        exchange.write(DISK + b"and more")
        exchange.hold()  # a client reading to the end would wait here

    hostile.route("GET", MANIFEST_PATH, serve(disk_manifest([(DISK, len(DISK), TITLE)])))
    hostile.route("GET", BLOB_PATH, endless)

    refused = pull_refused(hostile, tmp_path)

    assert refused.reason == "size-mismatch"
    assert f"declares {len(DISK)} bytes, more bytes arrived" in refused.message


def test_a_blob_announced_longer_than_declared_is_refused_unread(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    def announce_gigabytes(exchange: Exchange) -> None:
        exchange.start(200, length=10 * 1024**3)
        exchange.hold()

    hostile.route("GET", MANIFEST_PATH, serve(disk_manifest([(DISK, len(DISK), TITLE)])))
    hostile.route("GET", BLOB_PATH, announce_gigabytes)

    refused = pull_refused(hostile, tmp_path)

    assert refused.reason == "size-mismatch"
    assert f"announces {10 * 1024**3} bytes" in refused.message


def test_a_blob_shorter_than_declared_is_refused(hostile: ScriptedRegistry, tmp_path: Path) -> None:
    hostile.route("GET", MANIFEST_PATH, serve(disk_manifest([(DISK, len(DISK), TITLE)])))
    hostile.route("GET", BLOB_PATH, lambda exchange: exchange.send(200, DISK[:100]))

    refused = pull_refused(hostile, tmp_path)

    assert refused.reason == "size-mismatch"
    assert "ended after 100 bytes" in refused.message


def test_a_manifest_announced_over_the_bound_is_refused_unread(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    def huge(exchange: Exchange) -> None:
        exchange.start(200, headers={"Content-Type": MANIFEST_TYPE}, length=MAX_MANIFEST_BYTES + 1)
        exchange.hold()

    hostile.route("GET", MANIFEST_PATH, huge)

    assert pull_refused(hostile, tmp_path).reason == "too-large"


def test_a_manifest_over_the_bound_without_a_length_is_cut_at_the_bound(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    def flood(exchange: Exchange) -> None:
        exchange.start(200, headers={"Content-Type": MANIFEST_TYPE}, length=-1)
        exchange.write(b" " * (MAX_MANIFEST_BYTES + 64 * 1024))
        exchange.hold()

    hostile.route("GET", MANIFEST_PATH, flood)

    assert pull_refused(hostile, tmp_path).reason == "too-large"


@pytest.mark.parametrize(
    "title",
    ["../../evil", "/tmp/evil", "..", ".evil", "evil/../../x", "evil\nname", "evil\u202eexe"],
)
def test_a_layer_title_that_is_not_a_plain_name_is_refused_before_any_download(
    hostile: ScriptedRegistry, tmp_path: Path, title: str
) -> None:
    target = tmp_path / "a" / "b"
    manifest = disk_manifest([(DISK, len(DISK), {"org.opencontainers.image.title": title})])
    hostile.route("GET", MANIFEST_PATH, serve(manifest))
    hostile.route("GET", BLOB_PATH, lambda exchange: exchange.send(200, DISK))

    refused = pull_refused(hostile, target)

    assert refused.reason == "unsafe-name"
    assert hostile.paths() == [MANIFEST_PATH]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b"]


def test_a_manifest_that_is_not_the_pinned_digest_is_refused(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    pinned = digest_of(b"the manifest the list was signed for")
    served = disk_manifest([(DISK, len(DISK), TITLE)])
    hostile.route("GET", f"/v2/evil/disk/manifests/{pinned}", serve(served))

    refused = pull_refused(hostile, tmp_path, f"evil/disk@{pinned}")

    assert refused.reason == "digest-mismatch"
    assert f"pins {pinned}, received {digest_of(served)}" in refused.message
    assert hostile.paths() == [f"/v2/evil/disk/manifests/{pinned}"]


def test_a_manifest_that_is_not_the_digest_the_registry_announces_is_refused(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    announced = digest_of(b"what the registry claims to send")
    served = disk_manifest([(DISK, len(DISK), TITLE)])
    hostile.route("GET", MANIFEST_PATH, serve(served, **{"Docker-Content-Digest": announced}))

    refused = pull_refused(hostile, tmp_path)

    assert refused.reason == "digest-mismatch"
    assert f"announced {announced}, received {digest_of(served)}" in refused.message


def test_a_registry_that_drips_a_blob_is_stopped(hostile: ScriptedRegistry, tmp_path: Path) -> None:
    def drip(exchange: Exchange) -> None:
        exchange.start(200, length=len(DISK))
        for byte in DISK:
            if exchange.stopping.wait(0.05):
                return
            exchange.write(bytes([byte]))

    hostile.route("GET", MANIFEST_PATH, serve(disk_manifest([(DISK, len(DISK), TITLE)])))
    hostile.route("GET", BLOB_PATH, drip)
    started = time.monotonic()

    with pytest.raises(RegistryError, match="too slow") as stopped:
        pull_disk_image(hostile.reference("evil/disk:1"), tmp_path, timeouts=QUICK)

    assert not isinstance(stopped.value, ArtifactRejected)
    assert time.monotonic() - started < 3
    assert list(tmp_path.iterdir()) == []


def test_the_registry_error_message_is_shown_with_control_characters_escaped(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    body = b'{"errors":[{"code":"UNKNOWN","message":"disk on fire\\u001b[2J"}]}'
    hostile.route("GET", MANIFEST_PATH, lambda exchange: exchange.send(500, body))

    with pytest.raises(RegistryError) as failed:
        pull_disk_image(hostile.reference("evil/disk:1"), tmp_path, timeouts=QUICK)

    assert "UNKNOWN: disk on fire\\x1b[2J" in failed.value.message
    assert "\x1b" not in failed.value.message


def test_credentials_do_not_follow_a_blob_redirect_to_another_host(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    storage = ScriptedRegistry()
    credentials = RegistryCredentials("puller", "s3cret")
    try:
        storage.route("GET", "/bucket/disk", lambda exchange: exchange.send(200, DISK))
        manifest = disk_manifest([(DISK, len(DISK), TITLE)])

        def guarded(answer: object) -> object:
            def route(exchange: Exchange) -> None:
                if exchange.headers.get("Authorization") != credentials.basic_header():
                    exchange.send(401, headers={"WWW-Authenticate": 'Basic realm="test"'})
                else:
                    answer(exchange)  # type: ignore[operator]

            return route

        redirect = {"Location": f"http://{storage.host}/bucket/disk"}
        hostile.route("GET", MANIFEST_PATH, guarded(serve(manifest)))
        hostile.route("GET", BLOB_PATH, guarded(lambda e: e.send(307, headers=redirect)))

        pulled = pull_disk_image(
            hostile.reference("evil/disk:1"), tmp_path, credentials=credentials, timeouts=QUICK
        )

        assert pulled.files[0].path.read_bytes() == DISK
        [(_, _, storage_headers)] = storage.requests
        assert "Authorization" not in storage_headers
    finally:
        storage.stop()


def test_credentials_are_not_sent_to_a_plain_http_token_realm_elsewhere(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    challenge = 'Bearer realm="http://tokens.example.org/token",service="registry"'
    hostile.route(
        "GET", MANIFEST_PATH, lambda e: e.send(401, headers={"WWW-Authenticate": challenge})
    )

    with pytest.raises(RegistryError, match="not an HTTPS URL"):
        pull_disk_image(
            hostile.reference("evil/disk:1"),
            tmp_path,
            credentials=RegistryCredentials("puller", "s3cret"),
            timeouts=QUICK,
        )


def test_a_blob_the_registry_redirects_to_is_one_it_has_and_is_not_sent_again(
    hostile: ScriptedRegistry, tmp_path: Path
) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(DISK)
    elsewhere = {"Location": "https://storage.example.org/blob"}
    for digest in (EMPTY_DIGEST, digest_of(DISK)):
        hostile.route(
            "HEAD", f"/v2/evil/disk/blobs/{digest}", lambda e: e.send(307, headers=elsewhere)
        )
    hostile.route("PUT", MANIFEST_PATH, lambda exchange: exchange.send(201))
    annotations = disk_image_annotations(
        os_distro="debian", os_version="12", architecture="x86_64", tag="t"
    )

    pushed = push_disk_image(
        disk, hostile.reference("evil/disk:1"), annotations=annotations, disk_format="raw"
    )

    assert not pushed.uploaded
    assert [method for method, _, _ in hostile.requests] == ["HEAD", "HEAD", "PUT"]
