"""The EC2 connector against moto in server mode, through a real HTTP proxy
that delays instances and injects throttling, 5xx errors and timeouts."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from slipway.connectors.ec2 import Ec2Connector
from slipway.connectors.registry import CloudDriver
from slipway.domain.machines import (
    RUN_TAG,
    Capability,
    CloudImage,
    ImageSource,
    MachineSpec,
    MachineState,
    Rule,
)
from slipway.errors import CloudError, ImageFileError, InputError, NotFound, Unsupported
from tests.integration.ec2_proxy import Ec2Proxy

REGION = "us-east-1"


def _connect(proxy: Ec2Proxy, **options: object) -> Ec2Connector:
    connector = CloudDriver.EC2.connect(
        "aws-test", {"region": REGION, "endpoint_url": proxy.url, **options}
    )
    assert isinstance(connector, Ec2Connector)
    return connector


_AMI: list[str] = []  # moto's built-in AMIs survive a reset; listing them takes seconds


def _ami(cloud: Ec2Connector) -> str:
    if not _AMI:
        images = cloud.client.describe_images(Owners=["amazon"])["Images"]
        _AMI.append(next(i["ImageId"] for i in images if i.get("RootDeviceType") == "ebs"))
    return _AMI[0]


def _spec(cloud: Ec2Connector, token: str = "run-1/create", **kwargs: object) -> MachineSpec:
    values: dict[str, object] = {
        "name": "run-1",
        "image_id": _ami(cloud),
        "flavor": "t3.micro",
        "cpu": 2,
        "ram_gb": 1.0,
        "disk_gb": None,
        "user_data": "#cloud-config\n",
        "tags": {RUN_TAG: "run-1"},
        "client_token": token,
    }
    return MachineSpec(**{**values, **kwargs})  # type: ignore[arg-type]


def _wait_ready(cloud: Ec2Connector, machine_id: str, timeout: float = 30) -> tuple[int, object]:
    polls = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        polls += 1
        machine = cloud.get_machine(machine_id)
        if machine.state is MachineState.RUNNING and machine.address:
            return polls, machine
        time.sleep(0.3)
    raise AssertionError(f"{machine_id} not ready after {timeout} s")


def test_instance_types_become_flavors_for_the_catalog(ec2_proxy: Ec2Proxy) -> None:
    flavors = {f.name: f for f in _connect(ec2_proxy).flavors()}
    assert len(flavors) > 100
    assert (flavors["t3.micro"].cpu, flavors["t3.micro"].ram) == (2, 1.0)
    assert flavors["m5.large"].disk is None  # EBS only: the disk is chosen at deploy time
    assert (flavors["m5d.large"].disk or 0) > 0


def test_create_is_idempotent_by_client_token(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    first = cloud.create_machine(_spec(cloud))
    again = cloud.create_machine(_spec(cloud))
    assert again.id == first.id
    (listed,) = cloud.list_machines({RUN_TAG: "run-1"})
    assert listed.id == first.id
    assert listed.tags == {RUN_TAG: "run-1"}
    assert listed.flavor == "t3.micro"


def test_a_lost_answer_to_run_instances_does_not_make_a_second_instance(
    ec2_proxy: Ec2Proxy,
) -> None:
    cloud = _connect(ec2_proxy)
    spec = _spec(cloud)
    ec2_proxy.inject("lost", 1, action="RunInstances")
    machine = cloud.create_machine(spec)
    assert ec2_proxy.faults_served["lost"] == 1
    assert [m.id for m in cloud.list_machines({RUN_TAG: "run-1"})] == [machine.id]
    assert ec2_proxy.requests["RunInstances"] == 1  # the retry found it by its token tag


def test_slow_instances_are_polled_until_running_with_an_address(ec2_proxy: Ec2Proxy) -> None:
    ec2_proxy.boot_seconds, ec2_proxy.address_seconds = 2.0, 3.5
    cloud = _connect(ec2_proxy)
    machine = cloud.create_machine(_spec(cloud))
    assert machine.state is MachineState.PENDING
    seen = cloud.get_machine(machine.id)
    assert seen.state is MachineState.PENDING and seen.address is None
    polls, ready = _wait_ready(cloud, machine.id)
    assert polls > 3
    assert ready.address


def test_throttling_and_5xx_are_retried(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    machine = cloud.create_machine(_spec(cloud))
    ec2_proxy.inject("throttle", 2, action="DescribeInstances")
    ec2_proxy.inject("5xx", 2, action="DescribeInstances")
    assert cloud.get_machine(machine.id).id == machine.id
    assert ec2_proxy.faults_served == {"throttle": 2, "5xx": 2}
    ec2_proxy.inject("throttle", 1, action="RunInstances")
    ec2_proxy.inject("5xx", 1, action="RunInstances")
    other = cloud.create_machine(_spec(cloud, token="run-2/create", tags={RUN_TAG: "run-2"}))
    assert [m.id for m in cloud.list_machines({RUN_TAG: "run-2"})] == [other.id]


def test_a_timeout_is_retried(ec2_proxy: Ec2Proxy) -> None:
    # Generous against a slow moto on a busy host: only the injected hang times out.
    ec2_proxy.timeout_seconds = 8.0
    cloud = _connect(ec2_proxy, read_timeout=4)
    machine = cloud.create_machine(_spec(cloud))
    ec2_proxy.inject("timeout", 1, action="DescribeInstances")
    assert cloud.get_machine(machine.id).id == machine.id
    assert ec2_proxy.faults_served["timeout"] == 1


def test_throttling_that_never_ends_is_the_clouds_error(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy, max_attempts=2)
    ec2_proxy.inject("throttle", 5, action="DescribeInstanceTypes")
    with pytest.raises(CloudError, match="RequestLimitExceeded: Request limit exceeded") as info:
        cloud.flavors()
    assert info.value.hint == "the cloud kept throttling after every retry"


def test_delete_is_idempotent_and_terminated_machines_leave_the_list(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    machine = cloud.create_machine(_spec(cloud))
    cloud.delete_machine(machine.id)
    cloud.delete_machine(machine.id)
    assert cloud.get_machine(machine.id).state is MachineState.TERMINATED
    assert cloud.list_machines({RUN_TAG: "run-1"}) == []
    cloud.delete_machine("i-0123456789abcdef0")
    with pytest.raises(NotFound):
        cloud.get_machine("i-0123456789abcdef0")


def test_security_groups_are_brought_to_exactly_the_declared_rules(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    assert cloud.check_security_group("web") is None
    cloud.ensure_security_group("web", [Rule("tcp", "22"), Rule("tcp", "80")])
    cloud.ensure_security_group("web", [Rule("tcp", "80"), Rule("tcp", "8000-8080", "10.0.0.0/8")])
    group = cloud.check_security_group("web")
    assert group is not None
    assert sorted(group.rules, key=str) == sorted(
        [Rule("tcp", "80"), Rule("tcp", "8000-8080", "10.0.0.0/8")], key=str
    )
    machine = cloud.create_machine(_spec(cloud, security_groups=("web",)))
    groups = cloud.client.describe_instances(InstanceIds=[machine.id])["Reservations"][0][
        "Instances"
    ][0]["SecurityGroups"]
    assert [g["GroupName"] for g in groups] == ["web"]


def test_a_group_slipway_did_not_make_is_left_as_it_is(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    cloud.client.create_security_group(GroupName="made-by-hand", Description="not Slipway's")
    with pytest.raises(CloudError, match="made-by-hand was not made by Slipway"):
        cloud.ensure_security_group("made-by-hand", [Rule("tcp", "0-65535")])
    group = cloud.check_security_group("made-by-hand")
    assert group is not None and group.rules == ()


def test_managed_group_opens_everything(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    cloud.ensure_security_group("slipway_managed", [Rule("all"), Rule("all", source="::/0")])
    group = cloud.check_security_group("slipway_managed")
    assert group is not None
    assert set(group.rules) == {Rule("all"), Rule("all", source="::/0")}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_id": "ami-00000000000000000"}, "InvalidAMIID"),
        ({"flavor": "t3.gigantic"}, "t3.gigantic"),
        ({"security_groups": ("nope",)}, "security group nope does not exist"),
    ],
)
def test_bad_requests_fail_with_the_clouds_message(
    ec2_proxy: Ec2Proxy, change: dict[str, object], message: str
) -> None:
    cloud = _connect(ec2_proxy)
    with pytest.raises(CloudError, match=message) as info:
        cloud.create_machine(_spec(cloud, **change))
    assert str(info.value).startswith("aws-test: ")
    assert cloud.list_machines({}) == []


def test_an_unreachable_cloud_is_said_so(ec2_proxy: Ec2Proxy) -> None:
    cloud = CloudDriver.EC2.connect(
        "aws-test",
        {"region": REGION, "endpoint_url": "http://127.0.0.1:9", "max_attempts": 1},
    )
    with pytest.raises(CloudError, match="unreachable"):
        cloud.list_machines({})


def test_an_image_from_a_url_is_declared_unsupported(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    assert Capability.IMAGE_UPLOAD not in cloud.unsupported
    assert Capability.IMAGE_FROM_URL in cloud.unsupported
    source = ImageSource("https://example.org/x.qcow2", 1, "0" * 128, "0" * 32)
    with pytest.raises(Unsupported, match="URL"):
        cloud.register_image(source, "x-image", {})


def test_disk_size_sets_the_root_volume(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    machine = cloud.create_machine(_spec(cloud, disk_gb=30))
    instance = cloud.client.describe_instances(InstanceIds=[machine.id])["Reservations"][0][
        "Instances"
    ][0]
    volume_id = instance["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    volume = cloud.client.describe_volumes(VolumeIds=[volume_id])["Volumes"][0]
    assert volume["Size"] == 30


def test_console_log_and_images(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    machine = cloud.create_machine(_spec(cloud))
    assert isinstance(cloud.console_log(machine.id), str)
    assert cloud.images() == []  # nothing registered by this account yet


# -- images ------------------------------------------------------------------------

BLOCK = 512 * 1024
PROPERTIES = {"slipway-source": "debian-12", "slipway-version": "1.0", "architecture": "aarch64"}


def _qcow2(tmp_path: Path) -> tuple[Path, bytes]:
    """A 3 MiB disk: 1 MiB of 0xab, zeros, then 100 kB of 0xcd inside block 4."""
    raw = tmp_path / "disk.raw"
    with raw.open("wb") as file:
        file.truncate(3 << 20)
        file.write(b"\xab" * (1 << 20))
        file.seek((2 << 20) + 100_000)
        file.write(b"\xcd" * 100_000)
    qcow2 = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow2], check=True)
    return qcow2, raw.read_bytes()


def _upload(
    cloud: Ec2Connector, tmp_path: Path, name: str = "debian-12-v1", **extra: str
) -> CloudImage:
    qcow2, _ = _qcow2(tmp_path)
    return cloud.upload_image(qcow2, name, {**PROPERTIES, **extra})


def _snapshot_blocks(cloud: Ec2Connector, snapshot_id: str) -> dict[int, bytes]:
    listed = cloud.ebs_client.list_snapshot_blocks(SnapshotId=snapshot_id)
    return {
        b["BlockIndex"]: cloud.ebs_client.get_snapshot_block(
            SnapshotId=snapshot_id, BlockIndex=b["BlockIndex"], BlockToken=b["BlockToken"]
        )["BlockData"].read()
        for b in listed["Blocks"]
    }


def _own_snapshots(cloud: Ec2Connector) -> list[str]:
    snapshots = cloud.client.describe_snapshots(
        OwnerIds=["self"], Filters=[{"Name": "tag-key", "Values": ["slipway-image"]}]
    )["Snapshots"]
    return [s["SnapshotId"] for s in snapshots]


def test_an_uploaded_qcow2_becomes_a_tagged_ami_holding_exactly_its_blocks(
    ec2_proxy: Ec2Proxy, tmp_path: Path
) -> None:
    cloud = _connect(ec2_proxy)
    qcow2, raw = _qcow2(tmp_path)
    image = cloud.upload_image(qcow2, "debian-12-v1", PROPERTIES)
    assert (image.name, image.properties, image.ready, image.hidden) == (
        "debian-12-v1", PROPERTIES, True, False,
    )  # fmt: skip
    assert [i.id for i in cloud.images()] == [image.id]
    (ami,) = cloud.client.describe_images(ImageIds=[image.id])["Images"]
    assert ami["Architecture"] == "arm64"
    assert ami["RootDeviceName"] == "/dev/xvda"
    snapshot_id = ami["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    expected = {
        i // BLOCK: raw[i : i + BLOCK]
        for i in range(0, len(raw), BLOCK)
        if raw[i : i + BLOCK].strip(b"\0")
    }
    assert sorted(expected) == [0, 1, 4]  # the zeros between were not sent
    assert _snapshot_blocks(cloud, snapshot_id) == expected
    assert ec2_proxy.requests["PutSnapshotBlock"] == 3
    assert sorted(tmp_path.iterdir()) == [tmp_path / "disk.qcow2", tmp_path / "disk.raw"]


def test_images_are_found_by_their_properties_taken_literally(
    ec2_proxy: Ec2Proxy, tmp_path: Path
) -> None:
    cloud = _connect(ec2_proxy)
    first = _upload(cloud, tmp_path)
    second = _upload(cloud, tmp_path, "debian-12-v2", **{"slipway-version": "2.0"})
    assert [i.id for i in cloud.find_images({"slipway-version": "1.0"})] == [first.id]
    found = cloud.find_images({"slipway-source": "debian-12"})
    assert sorted(i.id for i in found) == sorted([first.id, second.id])
    assert cloud.find_images({"slipway-version": "1.*"}) == []


def test_a_hidden_image_leaves_the_list_but_is_found_and_still_launches(
    ec2_proxy: Ec2Proxy, tmp_path: Path
) -> None:
    cloud = _connect(ec2_proxy)
    image = _upload(cloud, tmp_path)
    cloud.hide_image(image.id)
    assert cloud.images() == []
    (found,) = cloud.find_images(PROPERTIES)
    assert (found.id, found.hidden, found.properties) == (image.id, True, PROPERTIES)
    (ami,) = cloud.client.describe_images(ImageIds=[image.id])["Images"]
    assert ami["DeprecationTime"]
    machine = cloud.create_machine(_spec(cloud, image_id=image.id))
    assert cloud.image_users(image.id) == [machine.id]


def test_image_users_are_the_instances_not_terminated(ec2_proxy: Ec2Proxy, tmp_path: Path) -> None:
    cloud = _connect(ec2_proxy)
    image = _upload(cloud, tmp_path)
    assert cloud.image_users(image.id) == []
    first = cloud.create_machine(_spec(cloud, image_id=image.id))
    second = cloud.create_machine(_spec(cloud, "run-2/create", image_id=image.id))
    cloud.create_machine(_spec(cloud, "run-3/create"))  # another image
    cloud.delete_machine(first.id)
    assert cloud.image_users(image.id) == [second.id]


def test_sharing_grants_launch_and_the_snapshots_volumes(
    ec2_proxy: Ec2Proxy, tmp_path: Path
) -> None:
    cloud = _connect(ec2_proxy)
    image = _upload(cloud, tmp_path)
    cloud.share_image(image.id, "210987654321")
    cloud.share_image(image.id, "210987654321")
    launch = cloud.client.describe_image_attribute(ImageId=image.id, Attribute="launchPermission")
    assert launch["LaunchPermissions"] == [{"UserId": "210987654321"}]
    (ami,) = cloud.client.describe_images(ImageIds=[image.id])["Images"]
    snapshot = cloud.client.describe_snapshot_attribute(
        SnapshotId=ami["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
        Attribute="createVolumePermission",
    )
    assert snapshot["CreateVolumePermissions"] == [{"UserId": "210987654321"}]


def test_sharing_with_something_not_an_account_id_is_refused(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    with pytest.raises(InputError, match="'my-project' is not an AWS account id"):
        cloud.share_image("ami-0123456789abcdef0", "my-project")


def test_deleting_an_image_removes_the_ami_and_its_snapshot(
    ec2_proxy: Ec2Proxy, tmp_path: Path
) -> None:
    cloud = _connect(ec2_proxy)
    image = _upload(cloud, tmp_path)
    assert len(_own_snapshots(cloud)) == 1
    cloud.delete_image(image.id)
    assert cloud.find_images(PROPERTIES) == []
    assert _own_snapshots(cloud) == []
    cloud.delete_image(image.id)  # already gone
    cloud.delete_image("ami-0123456789abcdef0")  # never was


@pytest.mark.parametrize(
    "action", ["StartSnapshot", "PutSnapshotBlock", "CompleteSnapshot", "RegisterImage"]
)
def test_a_failed_upload_leaves_no_snapshot_and_no_ami(
    ec2_proxy: Ec2Proxy, tmp_path: Path, action: str
) -> None:
    cloud = _connect(ec2_proxy, max_attempts=1)
    ec2_proxy.inject("5xx", 1, action=action)
    with pytest.raises(CloudError, match=r"InternalError|InternalServer|500"):
        _upload(cloud, tmp_path)
    assert ec2_proxy.faults_served["5xx"] == 1
    assert cloud.find_images(PROPERTIES) == []
    assert _own_snapshots(cloud) == []
    assert cloud.client.describe_images(Owners=["self"])["Images"] == []
    assert sorted(tmp_path.iterdir()) == [tmp_path / "disk.qcow2", tmp_path / "disk.raw"]


def test_an_interrupted_uploads_snapshot_is_found_and_deleted(ec2_proxy: Ec2Proxy) -> None:
    cloud = _connect(ec2_proxy)
    tags = [{"Key": k, "Value": v} for k, v in PROPERTIES.items()]
    # What a worker dying between the blocks and RegisterImage leaves.
    orphan = cloud.ebs_client.start_snapshot(
        VolumeSize=1, Tags=[*tags, {"Key": "slipway-image", "Value": "debian-12-v1"}]
    )["SnapshotId"]
    # Someone else's snapshot with the same tags is none of Slipway's business.
    cloud.ebs_client.start_snapshot(VolumeSize=1, Tags=tags)
    (found,) = cloud.find_images(PROPERTIES)
    assert (found.id, found.name, found.ready, found.hidden) == (
        orphan, "debian-12-v1", False, True,
    )  # fmt: skip
    assert found.properties == PROPERTIES
    cloud.delete_image(orphan)
    cloud.delete_image(orphan)
    assert cloud.find_images(PROPERTIES) == []


@pytest.mark.parametrize(
    ("name", "properties", "message"),
    [
        ("x", {}, "EC2 wants 3 to 128"),
        ("debian", {"k": "v" * 257}, "at most 256"),
        ("debian", {"k" * 129: "v"}, "128 characters"),
        ("debian", {f"k{i}": "v" for i in range(50)}, "at most 49"),
        ("debian", {"slipway-hidden": "false"}, "reserved"),
    ],
)
def test_what_ec2_cannot_keep_is_refused_before_anything_is_uploaded(
    ec2_proxy: Ec2Proxy, tmp_path: Path, name: str, properties: dict[str, str], message: str
) -> None:
    cloud = _connect(ec2_proxy)
    qcow2, _ = _qcow2(tmp_path)
    with pytest.raises(InputError, match=message):
        cloud.upload_image(qcow2, name, properties)
    assert ec2_proxy.requests["StartSnapshot"] == 0


def test_an_unreadable_file_is_refused_before_anything_is_uploaded(
    ec2_proxy: Ec2Proxy, tmp_path: Path
) -> None:
    cloud = _connect(ec2_proxy)
    (tmp_path / "junk.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 100)
    with pytest.raises(ImageFileError):
        cloud.upload_image(tmp_path / "junk.qcow2", "junk-image", {})
    assert ec2_proxy.requests["StartSnapshot"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["junk.qcow2"]
