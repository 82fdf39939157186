"""A subscription to an OCI repository, against Debian's real registry: every
tag holding a disk image is synced to the local image store with its
annotations as properties; an unchanged repository is not read twice; a tag
moved to new bytes replaces its image; a blob changed on the registry's disk
is refused by its digest; definitions name the repository as an appliance.
Hostile subscriptions are refused before anything is fetched."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx2
import pytest

from slipway.adapters.oci import disk_image_annotations, push_disk_image
from slipway.adapters.oci import repository as repository_module
from slipway.domain.sync import ImageState, SyncOutcome
from slipway.errors import InputError, PermissionDenied
from slipway.imagekit.store import ImageStore
from tests.endorser_ca import NOW
from tests.oci_registry import LocalRegistry
from tests.sync_world import SyncWorld, qcow2_bytes

VO = "vo.example.org"

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None, reason="qemu-img is not installed (scripts/setup)"
)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    made = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db")
    yield made
    made.close()


def _push(registry: LocalRegistry, tmp: Path, repository: str, tag: str, seed: str) -> str:
    """A qcow2 pushed to ``repository:tag`` in EGI's shape; its layer's digest."""
    path = tmp / f"{seed}.qcow2"
    path.write_bytes(qcow2_bytes(tmp, seed))
    pushed = push_disk_image(
        path,
        registry.reference(f"{repository}:{tag}"),
        annotations=disk_image_annotations(
            os_distro="ubuntu",
            os_version="24.04",
            architecture="x86_64",
            tag=f"2026.{tag}",
            title=f"Ubuntu 24.04 ({seed})",
        ),
    )
    return pushed.layer_digest


def _push_container_image(registry: LocalRegistry, repository: str, tag: str) -> None:
    """A tag that is no disk image: a container image's manifest."""
    base = f"http://{registry.host}/v2/{repository}"
    descriptors = []
    for data in (b"{}", b"layer"):
        digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
        session = httpx2.post(f"{base}/blobs/uploads/")
        location = httpx2.URL(f"http://{registry.host}").join(session.headers["Location"])
        put = httpx2.put(location.copy_merge_params({"digest": digest}), content=data)
        assert put.status_code == 201, put.text
        descriptors.append({"digest": digest, "size": len(data)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **descriptors[0]},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **descriptors[1]}],
    }
    answer = httpx2.put(
        f"{base}/manifests/{tag}",
        content=json.dumps(manifest).encode(),
        headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
    )
    assert answer.status_code == 201, answer.text


def _subscribe(world: SyncWorld, registry: LocalRegistry, repository: str, **changes) -> None:
    values = {"source": registry.reference(repository), "endorser_dn": None, "vo": VO}
    world.subscribe(**(values | changes))


def _store(world: SyncWorld) -> ImageStore:
    return ImageStore(world.data_dir / "images")


def test_every_disk_image_tag_is_synced_and_a_moved_tag_replaces_its_image(
    world, registry, tmp_path, monkeypatch
):
    monkeypatch.setattr(repository_module, "_PAGE", 1)  # the registry's pages, one tag each
    _push(registry, tmp_path, "egi/ubuntu", "1", "one")
    _push(registry, tmp_path, "egi/ubuntu", "2", "two")
    _push_container_image(registry, "egi/ubuntu", "app")
    _subscribe(world, registry, "egi/ubuntu", grace=timedelta(days=1))

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    (verify,) = [s for s in record.steps if s.step == "verify"]
    assert "2 image(s)" in verify.detail
    assert "unsigned" in verify.detail
    assert "tag app skipped: " in verify.detail and "not an OCI image manifest" not in verify.detail
    images = {i.version: i for i in world.sync().status("site").images}
    assert set(images) == {"2026.1", "2026.2"}
    assert {i.appliance for i in images.values()} == {"ubuntu"}
    assert {i.vo for i in images.values()} == {VO}
    stored = {e.name: e for e in _store(world).list()}
    second = stored[images["2026.2"].native_id or ""]
    assert second.properties is not None
    assert second.properties["os_distro"] == "ubuntu"
    assert second.properties["os_version"] == "24.04"
    assert second.properties["sha512"] == second.sha512 == images["2026.2"].sha512
    assert second.properties["ad:mpuri"].startswith(registry.reference("egi/ubuntu:2@sha256:"))

    again = world.sync().run("site")
    assert again.outcome is SyncOutcome.UNCHANGED
    assert [s.step for s in again.steps] == ["fetch", "verify"]

    _push(registry, tmp_path, "egi/ubuntu", "2", "two-rebuilt")  # the tag moves
    moved = world.sync().run("site")

    assert moved.outcome is SyncOutcome.SUCCEEDED, moved.steps
    assert [s.step for s in moved.steps if s.step == "download"] == ["download"]
    now = world.sync().status("site").images
    active = {i.version: i for i in now if i.state is ImageState.ACTIVE}
    assert active["2026.1"].native_id == images["2026.1"].native_id  # untouched
    assert active["2026.2"].native_id != images["2026.2"].native_id
    hidden = [i for i in now if i.state is ImageState.HIDDEN]
    assert [i.native_id for i in hidden] == [images["2026.2"].native_id]
    assert not world.sync().status("site").behind


def test_a_definition_names_the_repository_and_gets_its_newest_version(world, registry, tmp_path):
    from slipway import bootstrap
    from slipway.adapters.definitions.loader import load_paths

    _push(registry, tmp_path, "egi/debian", "9", "nine")
    _push(registry, tmp_path, "egi/debian", "10", "ten")
    _subscribe(world, registry, "egi/debian")
    assert world.sync().run("site").outcome is SyncOutcome.SUCCEEDED
    definitions = tmp_path / "defs"
    (definitions / "site").mkdir(parents=True)
    (definitions / "site" / "debian.yaml").write_text(
        f"kind: image\nappliance: {VO}/debian\nlogin_user: debian\n"
    )
    catalog = bootstrap.catalog_service(world.settings)
    catalog.import_files(load_paths([definitions], definitions))

    target = catalog.resolve("site/debian").targets["local"]

    newest = next(i for i in world.sync().status("site").images if i.version == "2026.10")
    assert target.native_id == newest.native_id  # 10 > 9, as versions


def test_a_blob_changed_on_the_registry_is_refused_by_its_digest(world, registry, tmp_path):
    digest = _push(registry, tmp_path, "egi/tampered", "1", "tampered")
    blob = registry.blob_file(digest)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    _subscribe(world, registry, "egi/tampered")

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.PARTIAL
    (failed,) = record.failed_images
    assert failed.step == "download" and "the manifest says sha256:" in failed.detail
    assert _store(world).list() == []
    assert not [p for p in (world.data_dir / "sync-cache").iterdir() if p.suffix != ".lock"]
    (image,) = world.sync().status("site").images
    assert image.state is ImageState.FAILED


def test_a_repository_subscription_is_checked_before_anything_is_fetched(world, registry):
    source = registry.reference("egi/ubuntu")
    with pytest.raises(InputError, match="no signature") as signed:
        world.subscribe(source=source, vo=VO)  # an endorser for what nobody signs
    assert signed.value.field == "endorser_dn"
    with pytest.raises(InputError, match="which VO") as no_vo:
        world.subscribe(source=source, endorser_dn=None)
    assert no_vo.value.field == "vo"
    with pytest.raises(InputError, match="digest names one artifact"):
        world.subscribe(source=source + "@sha256:" + "0" * 64, endorser_dn=None, vo=VO)
    with pytest.raises(InputError, match="for OCI repositories"):
        world.subscribe(vo=VO)  # a list names its own VO
    with pytest.raises(PermissionDenied):
        _subscribe(world, registry, "egi/ubuntu", service=world.sync("mallory"))
    assert world.sync().subscriptions() == []


def test_a_registry_on_the_server_s_own_network_is_refused(tmp_path, registry):
    world = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db", fetch_private=False)
    try:
        with pytest.raises(InputError, match=r"127\.0\.0\.1"):
            _subscribe(world, registry, "egi/ubuntu")
        assert world.sync().subscriptions() == []
    finally:
        world.close()


def test_tag_pages_follow_only_links_to_the_same_registry() -> None:
    assert repository_module._next_page(
        '</v2/a/tags/list?last=x&n=1>; rel="next"', "http://127.0.0.1:5000/v2/a/tags/list?n=1"
    ) == ("http://127.0.0.1:5000/v2/a/tags/list?last=x&n=1")
    assert repository_module._next_page("", "http://h/v2/a/tags/list") is None


def test_the_api_takes_a_repository_subscription_from_an_administrator_only(world, registry):
    api = world.api()
    body = {"name": "egi", "cloud": "local", "source": registry.reference("egi/ubuntu")}
    refused = api.post("/api/subscriptions", json=body, headers=world.headers("admin"))
    assert refused.status_code == 422 and "which VO" in refused.text
    assert (
        api.post(
            "/api/subscriptions", json=body | {"vo": VO}, headers=world.headers("mallory")
        ).status_code
        == 403
    )
    made = api.post("/api/subscriptions", json=body | {"vo": VO}, headers=world.headers("admin"))
    assert made.status_code == 201, made.text
    assert (made.json()["vo"], made.json()["endorser_dn"]) == (VO, "")


def test_a_download_from_the_registry_resumes_where_it_stopped(registry, tmp_path):
    from slipway.adapters.sync_oci import OciListReader
    from slipway.adapters.sync_sources import ImageCache
    from slipway.domain.sync import Subscription

    digest = _push(registry, tmp_path, "egi/resumed", "1", "resumed")
    source = registry.reference("egi/resumed")
    reader = OciListReader(fetch_private=True)
    fetched = reader.fetch(source, None, None)
    assert fetched.message is not None
    subscription = Subscription("s", "local", source, "", "admin", NOW, vo=VO)
    (image,) = reader.verify(fetched.message, subscription, None, NOW).image_list.images
    whole = (tmp_path / "resumed.qcow2").read_bytes()
    cache = ImageCache(tmp_path / "cache", fetch_private=True)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"sha256-{digest.removeprefix('sha256:')}.part").write_bytes(whole[:1000])

    cached = cache.fetch(image, lambda done: None)

    assert cached.fetched == len(whole) - 1000  # a range request, not the whole blob again
    assert cached.path.read_bytes() == whole
    assert cached.sha512 == hashlib.sha512(whole).hexdigest()


def test_a_hostile_registry_s_tag_names_are_not_sent_back_to_it() -> None:
    from slipway.adapters.oci.repository import parse_repository, read_repository
    from tests.integration.oci.scripted_registry import ScriptedRegistry, disk_manifest

    registry = ScriptedRegistry()
    try:
        tags = {"name": "egi/x", "tags": ["../../v2/other/manifests/secret", "ok", "ok"]}
        registry.route(
            "GET", "/v2/egi/x/tags/list?n=200", lambda ex: ex.send(200, json.dumps(tags).encode())
        )
        manifest = disk_manifest([(b"disk", 4, {})])
        registry.route(
            "GET",
            "/v2/egi/x/manifests/ok",
            lambda ex: ex.send(200, manifest, headers={"Content-Type": MANIFEST}),
        )
        state = read_repository(parse_repository(registry.reference("egi/x")))
    finally:
        registry.stop()
    assert [i.tag for i in state.images] == ["ok"]  # once
    ((shown, why),) = state.skipped
    assert "../../v2" in shown and why == "not a tag by the OCI grammar"
    assert registry.paths() == ["/v2/egi/x/tags/list?n=200", "/v2/egi/x/manifests/ok"]


MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def test_a_registry_s_manifests_are_bounded_in_all(monkeypatch) -> None:
    from slipway.adapters.oci import repository
    from slipway.errors import RegistryError
    from tests.integration.oci.scripted_registry import ScriptedRegistry, disk_manifest

    manifest = disk_manifest([(b"disk", 4, {"note": "x" * 4000})])
    monkeypatch.setattr(repository, "MAX_MANIFESTS_BYTES", 3 * len(manifest))
    registry = ScriptedRegistry()
    try:
        tags = {"name": "egi/x", "tags": [f"t{n}" for n in range(10)]}
        registry.route(
            "GET", "/v2/egi/x/tags/list?n=200", lambda ex: ex.send(200, json.dumps(tags).encode())
        )
        for n in range(10):
            registry.route(
                "GET",
                f"/v2/egi/x/manifests/t{n}",
                lambda ex: ex.send(200, manifest, headers={"Content-Type": MANIFEST}),
            )
        with pytest.raises(RegistryError, match="manifests are over"):
            repository.read_repository(repository.parse_repository(registry.reference("egi/x")))
    finally:
        registry.stop()
    assert len(registry.paths()) == 1 + 4  # the tag list, and no manifest past the bound
