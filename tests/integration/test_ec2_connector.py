"""The EC2 connector against moto in server mode, through a real HTTP proxy
that delays instances and injects throttling, 5xx errors and timeouts."""

from __future__ import annotations

import time

import pytest

from slipway.connectors.ec2 import Ec2Connector
from slipway.connectors.registry import CloudDriver
from slipway.domain.machines import RUN_TAG, Capability, MachineSpec, MachineState, Rule
from slipway.errors import CloudError, NotFound, Unsupported
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


def test_image_upload_is_declared_unsupported(ec2_proxy: Ec2Proxy, tmp_path) -> None:
    cloud = _connect(ec2_proxy)
    assert Capability.IMAGE_UPLOAD in cloud.unsupported
    with pytest.raises(Unsupported, match="S3"):
        cloud.upload_image(tmp_path / "x.qcow2", "x", {})


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
