"""Provider sync against the local image store: signed lists served over
HTTP through several versions (add, change, remove, expire an image), and
the store ends up matching each one; bad lists and bad files change nothing."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from slipway.domain.sync import ImageState, SyncOutcome
from slipway.errors import Conflict, PermissionDenied
from slipway.imagekit.store import ImageStore
from tests.endorser_ca import NOW, EndorsingCA
from tests.sync_world import LIST_PATH, SyncWorld, qcow2_bytes

pytestmark = pytest.mark.usefixtures("qemu_img")


@pytest.fixture
def qemu_img() -> None:
    import shutil

    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (scripts/setup installs it)")


@pytest.fixture(params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SyncWorld]:
    url = f"sqlite:///{tmp_path}/slipway.db"
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    made = SyncWorld(tmp_path, url)
    yield made
    made.close()


def _store(world: SyncWorld) -> ImageStore:
    return ImageStore(world.data_dir / "images")


def _states(world: SyncWorld) -> dict[str, str]:
    return {i.appliance: i.state.value for i in world.sync().status("site").images}


def test_a_first_sync_puts_every_listed_image_in_the_store_with_its_properties(world, tmp_path):
    a = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    b = world.image("beta", qcow2_bytes(tmp_path, "beta"), os_name="Ubuntu", os_version="24.04")
    image_list = world.publish(a, b)
    world.subscribe()

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    assert record.list_version == "1"
    assert [s.step for s in record.steps][:2] == ["fetch", "verify"]
    downloads = [s for s in record.steps if s.step == "download"]
    assert sorted(s.bytes for s in downloads) == sorted([a.size, b.size])
    stored = {e.properties["appdb_id"]: e for e in _store(world).list() if e.properties}
    assert set(stored) == {a.identifier, b.identifier}
    beta = stored[b.identifier]
    assert beta.properties is not None
    assert beta.properties["os_distro"] == "ubuntu"
    assert beta.properties["os_version"] == "24.04"
    assert beta.properties["image_list"] == image_list.identifier
    assert beta.properties["hv:imagelist:version"] == "1"
    assert beta.properties["sha512"] == b.sha512
    assert json.loads(beta.properties["APPLIANCE_ATTRIBUTES"])["ad:appid"] == "beta"
    assert beta.sha512 == b.sha512  # the very bytes of the list's file
    assert not list((world.data_dir / "sync-cache").glob("*.part"))


def test_an_unchanged_list_is_not_downloaded_again(world, tmp_path):
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    world.subscribe()
    world.sync().run("site")

    again = world.sync().run("site")

    assert again.outcome is SyncOutcome.UNCHANGED
    assert world.server.hits(LIST_PATH)[-1][1] == 304
    assert [s.step for s in again.steps] == ["fetch", "verify"]


def test_each_new_list_version_is_followed_change_remove_add_expire(world, tmp_path):
    alpha1 = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    beta = world.image("beta", qcow2_bytes(tmp_path, "beta"))
    gamma = world.image("gamma", qcow2_bytes(tmp_path, "gamma"))
    world.publish(alpha1, beta, gamma)
    world.subscribe(grace=timedelta(days=1))
    world.sync().run("site")
    first = {i.appliance: i.native_id for i in world.sync().status("site").images}

    alpha2 = world.image("alpha", qcow2_bytes(tmp_path, "alpha-2"), version="2")
    alpha2 = alpha2.__class__(**{**alpha2.__dict__, "identifier": alpha1.identifier})
    delta = world.image("delta", qcow2_bytes(tmp_path, "delta"))
    expired = world.image(
        "gamma", qcow2_bytes(tmp_path, "gamma"), expires=NOW - timedelta(minutes=1)
    )
    world.publish(alpha2, delta, expired)  # alpha changed, beta removed, delta new, gamma expired
    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    images = world.sync().status("site").images
    active = {i.appliance: i for i in images if i.state is ImageState.ACTIVE}
    hidden = {i.native_id for i in images if i.state is ImageState.HIDDEN}
    assert set(active) == {"alpha", "delta"}
    assert active["alpha"].version == "2"
    assert active["alpha"].native_id != first["alpha"]
    assert hidden == {first["alpha"], first["beta"], first["gamma"]}
    visible = {e.name for e in _store(world).list() if not e.hidden}
    assert visible == {active["alpha"].native_id, active["delta"].native_id}
    # hidden, not deleted: a machine may still run them until the grace is over
    assert {e.name for e in _store(world).list() if e.hidden} == hidden


def test_images_a_new_list_version_keeps_are_not_shown_behind_it(world, tmp_path):
    alpha = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    world.publish(alpha)
    world.subscribe()
    world.sync().run("site")
    world.publish(alpha, world.image("beta", qcow2_bytes(tmp_path, "beta")))

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    status = world.sync().status("site")
    assert {i.appliance: i.list_version for i in status.images} == {"alpha": "2", "beta": "2"}
    assert not status.behind
    assert [s.image for s in record.steps if s.step == "download"] == [
        world.image("beta", b"").identifier
    ]  # alpha was kept, not downloaded again


def test_hidden_images_are_deleted_once_the_grace_period_is_over(world, tmp_path):
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    world.subscribe()  # grace 0
    world.sync().run("site")
    world.publish()  # alpha leaves the list
    world.sync().run("site")  # hidden
    assert {e.hidden for e in _store(world).list()} == {True}

    record = world.sync().run("site")

    assert [s.step for s in record.steps if s.outcome == "ok"][-1] == "delete"
    assert _store(world).list() == []
    assert _states(world) == {"alpha": "deleted"}


def test_a_list_that_fails_verification_changes_nothing(world, tmp_path):
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    world.subscribe()
    world.sync().run("site")
    before = _store(world).list()
    forger = EndorsingCA().issue()
    world.endorser = forger  # same subject, a CA nobody trusts
    world.publish(world.image("beta", qcow2_bytes(tmp_path, "beta")))

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.REJECTED
    assert "untrusted-chain" in {reason for reason, _ in record.problems}
    assert _store(world).list() == before
    assert world.sync().status("site").accepted.version == "1"


def test_a_list_whose_version_goes_down_is_rejected(world, tmp_path):
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    world.subscribe()
    world.sync().run("site")
    world.version = -5
    world.publish(world.image("beta", qcow2_bytes(tmp_path, "beta")))

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.REJECTED
    assert "version-downgrade" in {reason for reason, _ in record.problems}


def test_a_file_with_the_wrong_checksum_fails_alone_and_is_retried(world, tmp_path):
    good = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    bad = world.image("beta", qcow2_bytes(tmp_path, "beta"))
    world.server.files["/files/beta.qcow2"] = qcow2_bytes(tmp_path, "tampered")[: bad.size]
    world.publish(good, bad)
    world.subscribe()

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.PARTIAL
    (failed,) = record.failed_images
    assert failed.step == "download" and "SHA-512" in failed.detail
    assert _states(world) == {"alpha": "active", "beta": "failed"}
    assert len(_store(world).list()) == 1
    assert not list((world.data_dir / "sync-cache").glob("*"))[:0]

    world.server.files["/files/beta.qcow2"] = qcow2_bytes(tmp_path, "beta")  # fixed
    retried = world.sync().run("site")

    assert retried.outcome is SyncOutcome.SUCCEEDED
    assert _states(world) == {"alpha": "active", "beta": "active"}
    assert [i.attempts for i in world.sync().status("site").images] == [1, 2]


def test_a_dropped_download_is_resumed_by_the_next_sync(world, tmp_path):
    data = qcow2_bytes(tmp_path, "alpha", size="64M", written="6M")
    image = world.image("alpha", data)
    world.publish(image)
    world.subscribe()
    world.server.cut_after["/files/alpha.qcow2"] = len(data) // 2

    first = world.sync().run("site")

    assert first.outcome is SyncOutcome.PARTIAL
    assert "resumes" in first.failed_images[0].detail
    second = world.sync().run("site")
    assert second.outcome is SyncOutcome.SUCCEEDED
    (download,) = [s for s in second.steps if s.step == "download"]
    asked, status = world.server.hits("/files/alpha.qcow2")[-1]
    resumed_at = int(asked.removeprefix("bytes=").rstrip("-"))
    assert status == 206 and 0 < resumed_at <= len(data) // 2  # what was written whole
    assert download.bytes == len(data) - resumed_at
    (stored,) = _store(world).list()
    assert stored.sha512 == image.sha512


def test_a_sync_already_running_is_refused(world, tmp_path):
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    world.subscribe()
    from datetime import UTC, datetime

    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.bootstrap import engine_for

    with SqlUnitOfWork(engine_for(world.settings.database_url)) as uow:
        now = datetime.now(UTC)
        assert uow.sync.claim("site", "other-host:1", now, now + timedelta(minutes=5))
        uow.commit()

    with pytest.raises(Conflict, match="other-host:1"):
        world.sync().run("site")


def test_only_administrators_see_or_change_subscriptions(world, tmp_path):
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    world.subscribe()
    mallory = world.sync("mallory")

    for attempt in (
        mallory.subscriptions,
        lambda: mallory.status("site"),
        lambda: mallory.run("site"),
        lambda: mallory.history(),
        lambda: mallory.remove("site", forget=True),
    ):
        with pytest.raises(PermissionDenied):
            attempt()
    assert _store(world).list() == []


def test_a_definition_naming_the_appliance_deploys_the_synced_image_then_the_new_one(
    world, tmp_path
):
    from slipway import bootstrap
    from slipway.adapters.definitions.loader import load_paths
    from slipway.domain.sizes import Size
    from slipway.errors import NotFound
    from slipway.services.deploy import DeployRequest

    definitions = tmp_path / "defs"
    (definitions / "site").mkdir(parents=True)
    (definitions / "site" / "alpha.yaml").write_text(
        "kind: image\nappliance: vo.example.org/alpha\nlogin_user: debian\n"
        "size: {cpu: 1, ram: 0.5}\n"
    )
    catalog = bootstrap.catalog_service(world.settings)
    catalog.import_files(load_paths([definitions], definitions))
    with pytest.raises(NotFound, match="has not been synced to cloud 'local'"):
        catalog.resolve("site/alpha", clouds=["local"])

    alpha = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    world.publish(alpha)
    world.subscribe(grace=timedelta(days=1))
    world.sync().run("site")
    (first,) = world.sync().status("site").images

    resolved = catalog.resolve("site/alpha")
    target = resolved.targets["local"]
    assert target.native_id == first.native_id
    assert target.synced is not None and target.synced.list_version == "1"
    runs = bootstrap.runtime(world.settings).runs_for("admin")
    run, _ = runs.deploy(DeployRequest("site/alpha", "local", size=Size(cpu=1, ram=0.5)))
    assert run.target is not None and run.target.native_id == first.native_id
    runs.terminate(run.id)

    newer = world.image("alpha", qcow2_bytes(tmp_path, "alpha-2"), version="2")
    world.publish(replace(newer, identifier=alpha.identifier))
    world.sync().run("site")

    second = next(i for i in world.sync().status("site").images if i.version == "2")
    run, _ = runs.deploy(DeployRequest("site/alpha", "local", size=Size(cpu=1, ram=0.5)))
    assert run.target is not None and run.target.native_id == second.native_id != first.native_id
    runs.terminate(run.id)
    (definitions / "site" / "alpha-v1.yaml").write_text(
        "kind: image\nappliance: vo.example.org/alpha@1\nlogin_user: debian\n"
    )
    catalog.import_files(load_paths([definitions], definitions))
    pinned = catalog.resolve("site/alpha-v1").targets["local"]  # hidden, not yet deleted
    assert pinned.native_id == first.native_id


def test_the_store_takes_the_download_and_its_hash_without_reading_it_again(
    world, tmp_path, monkeypatch
):
    import slipway.imagekit.store as store

    def no_second_read(path: Path) -> str:
        raise AssertionError(f"{path} was read again to hash it")

    monkeypatch.setattr(store, "sha512_of", no_second_read)
    monkeypatch.setattr(store, "copy_with_sha512", no_second_read)
    image = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    world.publish(image)
    world.subscribe()

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    (stored,) = _store(world).list()
    assert stored.sha512 == image.sha512


def test_a_hash_kept_with_a_file_is_forgotten_once_the_file_changes(tmp_path):
    from slipway.imagekit.store import known_sha512, remember_sha512

    path = tmp_path / "f"
    path.write_bytes(b"one")
    remember_sha512(path, "a" * 128)
    assert known_sha512(path) == "a" * 128
    path.write_bytes(b"two, longer")
    assert known_sha512(path) is None


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[SyncWorld]:
    made = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db")
    yield made
    made.close()


@pytest.mark.skipif(shutil.which("sfdisk") is None, reason="needs sfdisk (fdisk)")
def test_ova_and_raw_images_are_converted_to_qcow2_once_downloaded(sqlite_world, tmp_path):
    from slipway.imagekit.convert import convert, open_image
    from slipway.imagekit.recipe import DiskFormat

    world = sqlite_world
    raw = tmp_path / "appliance.raw"
    with raw.open("wb") as disk:
        disk.truncate(8 * 1024 * 1024)
    subprocess.run(["sfdisk", "-q", str(raw)], input=b",,L\n", check=True)
    ova = tmp_path / "appliance.ova"
    convert(open_image(raw), ova, DiskFormat.OVA)
    files = {"raw": raw.read_bytes(), "ova": ova.read_bytes()}
    listed = {f: world.image(f, data, format=f.upper()) for f, data in files.items()}
    world.publish(*listed.values())
    world.subscribe()

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    assert [s.outcome for s in record.steps if s.step == "convert"] == ["ok", "ok"]
    stored = {e.properties["appdb_id"]: e for e in _store(world).list() if e.properties}
    for fmt, image in listed.items():
        entry = stored[image.identifier]
        assert entry.format == "qcow2"
        assert entry.virtual_size == 8 * 1024 * 1024
        assert entry.properties is not None
        assert entry.properties["sha512"] == hashlib.sha512(files[fmt]).hexdigest()
    assert not list((world.data_dir / "sync-cache").glob("*.qcow2*"))  # forgotten once uploaded


def test_a_file_that_cannot_be_converted_fails_alone_and_changes_nothing(sqlite_world, tmp_path):
    world = sqlite_world
    good = world.image("good", qcow2_bytes(tmp_path, "good"))
    broken = world.image("broken", b"not a disk image at all" * 1000, format="VMDK")
    world.publish(good, broken)
    world.subscribe()

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.PARTIAL
    (failed,) = record.failed_images
    assert failed.step == "convert" and failed.image == broken.identifier
    assert failed.detail  # the image kit's own words
    assert _states(world) == {"good": "active", "broken": "failed"}
    assert [e.properties["appdb_id"] for e in _store(world).list() if e.properties] == [
        good.identifier
    ]
    assert not list((world.data_dir / "sync-cache").glob("*.tmp"))
