"""Provider sync to other clouds than the local store: Exoscale (it fetches
the file itself, given its MD5: the fake API over HTTP downloads and checks
it), EC2 (an upload through the EBS direct APIs, moto over HTTP), and the
in-memory fake for what needs machines: an image in use is hidden but not
deleted, and images reach the VO's project."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from slipway.connectors.fake import FakeConnector
from slipway.connectors.registry import CloudDriver
from slipway.domain.machines import RUN_TAG, Capability, MachineSpec
from slipway.domain.sync import SYNC_KEY, ImageState, SyncOutcome
from slipway.services.sync import NewSubscription
from tests.integration.ec2_proxy import Ec2Proxy
from tests.sync_world import SyncWorld, qcow2_bytes


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    made = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db")
    yield made
    made.close()


def _subscribe(world: SyncWorld, service: Any, cloud: str, **changes: Any) -> None:
    values: dict[str, Any] = {
        "name": "site",
        "cloud": cloud,
        "source": world.list_url,
        "endorser_dn": world.endorser_dn,
        "grace": timedelta(0),
        **changes,
    }
    service.add(NewSubscription(**values))


def test_exoscale_registers_the_listed_file_by_its_url_and_md5(world, tmp_path):
    from tests.integration.exoscale_fake import FakeExoscale

    fake = FakeExoscale().start()
    try:
        cloud = CloudDriver.EXOSCALE.connect(
            "exo",
            {"region": "ch-gva-2", "endpoint": fake.endpoint, "api_key": fake.key,
             "api_secret": fake.secret, "poll_interval": 0.02},
        )  # fmt: skip
        data = qcow2_bytes(tmp_path, "alpha")
        image = world.image("alpha", data)
        world.publish(image)
        service = world.sync_to(cloud)
        _subscribe(world, service, "exo")

        record = service.run("site")

        assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
        assert "register" in [s.step for s in record.steps]
        (held,) = service.status("site").images
        (template,) = cloud.find_images({SYNC_KEY: held.key})
        assert template.id == held.native_id
        assert template.properties["appdb_id"] == image.identifier
        assert [i.id for i in cloud.images() if i.id == held.native_id] == [held.native_id]
    finally:
        fake.stop()


def test_ec2_gets_an_ami_uploaded_through_ebs(world, tmp_path, ec2_proxy: Ec2Proxy):
    cloud = CloudDriver.EC2.connect("aws", {"region": "us-east-1", "endpoint_url": ec2_proxy.url})
    image = world.image("alpha", qcow2_bytes(tmp_path, "alpha"), os_name="Debian")
    world.publish(image)
    service = world.sync_to(cloud)
    _subscribe(world, service, "aws", projects=(("vo.example.org", "123456789012"),))

    record = service.run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    (held,) = service.status("site").images
    (ami,) = cloud.find_images({SYNC_KEY: held.key})
    assert ami.id == held.native_id and ami.ready and not ami.hidden
    assert ami.properties["os_distro"] == "debian"
    client: Any = cloud.client  # type: ignore[attr-defined]
    launch = client.describe_image_attribute(ImageId=ami.id, Attribute="launchPermission")
    assert {"UserId": "123456789012"} in launch["LaunchPermissions"]


def test_an_image_in_use_is_hidden_but_not_deleted(world, tmp_path):
    cloud = FakeConnector("fake", images=[])
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    service = world.sync_to(cloud)
    _subscribe(world, service, "fake")
    service.run("site")
    (held,) = service.status("site").images
    assert held.native_id is not None
    cloud.create_machine(
        MachineSpec("vm", held.native_id, "small", 1, 1.0, None, "", tags={RUN_TAG: "r1"})
    )
    world.publish()  # alpha leaves the list
    service.run("site")  # hidden
    record = service.run("site")  # grace 0: would delete, but a machine uses it

    (kept,) = service.status("site").images
    assert kept.state is ImageState.HIDDEN
    (skipped,) = [s for s in record.steps if s.step == "delete"]
    assert skipped.outcome == "skipped" and "fake-" in skipped.detail
    assert held.native_id in {i.id for i in cloud.find_images({})}
    assert held.native_id not in {i.id for i in cloud.images()}

    cloud.delete_machine(cloud.list_machines({})[0].id)
    service.run("site")
    assert service.status("site").images[0].state is ImageState.DELETED
    assert cloud.find_images({}) == []


def test_images_reach_the_vos_project_and_an_unmapped_vo_is_reported(world, tmp_path):
    cloud = FakeConnector("fake", images=[])
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    service = world.sync_to(cloud)
    _subscribe(world, service, "fake", projects=(("other.vo", "p-other"),))

    record = service.run("site")

    assert record.outcome is SyncOutcome.PARTIAL
    (failed,) = record.failed_images
    assert "no project is mapped to VO vo.example.org" in failed.detail
    assert cloud.find_images({}) == []  # nothing uploaded that its users could not reach


@pytest.mark.parametrize("method", ["upload_image", "stream_image"])
def test_an_interrupted_upload_is_cleaned_up_and_never_duplicated(world, tmp_path, method):
    """What a worker killed after the upload but before recording it leaves:
    an image under the mark. The next sync adopts it instead of uploading
    again — after an upload of the finished file, or one beside the download."""
    streams = {} if method == "stream_image" else {Capability.IMAGE_STREAMING: "not here"}
    cloud = FakeConnector("fake", images=[], unsupported=streams)
    world.publish(world.image("alpha", qcow2_bytes(tmp_path, "alpha")))
    service = world.sync_to(cloud)
    _subscribe(world, service, "fake")
    original = getattr(cloud, method)

    def upload_then_die(source: Any, name: str, properties: Any) -> Any:
        original(source, name, properties)
        raise KeyboardInterrupt  # the process dies right after the cloud stored it

    setattr(cloud, method, upload_then_die)
    with pytest.raises(KeyboardInterrupt):
        service.run("site")
    setattr(cloud, method, original)
    assert service.status("site").images[0].state is ImageState.PENDING

    record = service.run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED
    assert "upload" not in [s.step for s in record.steps]  # adopted, not uploaded again
    assert len(cloud.find_images({})) == 1
    assert service.status("site").images[0].state is ImageState.ACTIVE
    assert cloud.calls.count(method) == 1


def test_ec2_follows_a_new_list_version_and_deletes_the_old_ami_with_its_snapshot(
    world, tmp_path, ec2_proxy: Ec2Proxy
):
    from dataclasses import replace

    cloud = CloudDriver.EC2.connect("aws", {"region": "us-east-1", "endpoint_url": ec2_proxy.url})
    client: Any = cloud.client  # type: ignore[attr-defined]
    alpha = world.image("alpha", qcow2_bytes(tmp_path, "alpha"))
    world.publish(alpha)
    service = world.sync_to(cloud)
    _subscribe(world, service, "aws")
    service.run("site")
    (first,) = service.status("site").images
    old = client.describe_images(ImageIds=[first.native_id])["Images"][0]
    old_snapshot = old["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]

    newer = world.image("alpha", qcow2_bytes(tmp_path, "alpha-2"), version="2")
    world.publish(replace(newer, identifier=alpha.identifier))
    second = service.run("site")

    assert second.outcome is SyncOutcome.SUCCEEDED, second.steps
    held = {i.version: i for i in service.status("site").images}
    assert held["2"].state is ImageState.ACTIVE and held["1"].state is ImageState.HIDDEN
    listed = {i.id for i in cloud.images()}
    assert held["2"].native_id in listed and first.native_id not in listed  # deprecated

    third = service.run("site")  # grace 0 and no instance uses it
    assert "delete" in [s.step for s in third.steps if s.outcome == "ok"]
    mine = client.describe_images(Owners=["self"], IncludeDeprecated=True)["Images"]
    assert first.native_id not in {i["ImageId"] for i in mine}
    snapshots = client.describe_snapshots(OwnerIds=["self"])["Snapshots"]
    assert old_snapshot not in {s["SnapshotId"] for s in snapshots}


def test_an_upload_beside_the_download_never_ends_on_a_file_that_fails_its_checks(world, tmp_path):
    """The cloud reads the file as it arrives; a file whose SHA-512 is not the
    list's, or a qcow2 that would read another file, fails its upload before
    the cloud has it all, and nothing of it is on the cloud."""
    import subprocess

    cloud = FakeConnector("fake", images=[])
    good = world.image("good", qcow2_bytes(tmp_path, "good"))
    corrupt = world.image("corrupt", qcow2_bytes(tmp_path, "corrupt"))
    world.server.files["/files/corrupt.qcow2"] += b"!"  # served, but not what was listed
    corrupt = corrupt.__class__(**{**corrupt.__dict__, "size": corrupt.size + 1})
    base = tmp_path / "base.qcow2"
    base.write_bytes(qcow2_bytes(tmp_path, "base"))
    layered = tmp_path / "layered.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "qcow2",
                    str(layered)], check=True)  # fmt: skip
    backed = world.image("backed", layered.read_bytes())
    world.publish(good, corrupt, backed)
    service = world.sync_to(cloud)
    _subscribe(world, service, "fake")

    record = service.run("site")

    assert record.outcome is SyncOutcome.PARTIAL
    failed = {s.title: s for s in record.failed_images}
    assert set(failed) == {"Image corrupt", "Image backed"}
    assert "SHA-512" in failed["Image corrupt"].detail
    assert "reads other files" in failed["Image backed"].detail
    assert all(s.step == "download" for s in failed.values())
    (stored,) = cloud.find_images({})
    assert stored.properties["appdb_id"] == good.identifier
    assert cloud.calls.count("stream_image") == 3 and "upload_image" not in cloud.calls
    steps = [(s.step, s.detail) for s in record.steps if s.title == "Image good"]
    assert ("upload", "while downloading") in steps
