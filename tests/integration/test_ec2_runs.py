"""Runs on EC2: the run service, the runner, the Huey queue on SQLite and the
SQL store, with the real EC2 connector talking to moto in server mode through
the delay/fault proxy (DESIGN.md §6, §11).

moto's instances have addresses but no machine behind them, so nothing answers
SSH there: readiness comes from a test prober that finds the instance by its
address and reports the vCPUs and memory of its instance type, as the guest
would (see ``ec2_world.InstanceTypeProber``). Everything else is production code.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.adapters.definitions.loader import load_text
from slipway.domain.machines import RUN_TAG, MachineSpec
from slipway.domain.runs import RunState
from slipway.domain.security import MANAGED_RULES
from slipway.entrypoints.worker import EmbeddedWorker
from slipway.errors import CloudError
from tests.integration.ec2_proxy import Ec2Proxy
from tests.integration.ec2_world import AWS, EXAMPLES, REGION, Ec2World

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")


@pytest.fixture
def moto_client(ec2_proxy: Ec2Proxy) -> Any:
    import boto3

    client = boto3.client(
        "ec2", region_name=REGION, endpoint_url=f"http://127.0.0.1:{ec2_proxy.upstream_port}"
    )
    client.describe_instances()  # moto builds the region on its first request
    return client


def _world(tmp_path: Path, url: str, proxy: Ec2Proxy, client: Any, **options: object) -> Ec2World:
    return Ec2World(tmp_path, url, proxy.url, client, cloud_options=options or None)


@pytest.fixture(params=["sqlite", "postgres"])
def world(
    request: pytest.FixtureRequest, tmp_path: Path, ec2_proxy: Ec2Proxy, moto_client: Any
) -> Iterator[Ec2World]:
    url = (
        f"sqlite:///{tmp_path / 'slipway.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    world = _world(tmp_path, url, ec2_proxy, moto_client)
    yield world
    world.close()


@pytest.fixture
def sqlite_world(tmp_path: Path, ec2_proxy: Ec2Proxy, moto_client: Any) -> Iterator[Ec2World]:
    world = _world(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}", ec2_proxy, moto_client)
    yield world
    world.close()


def _group_rules(client: Any, name: str) -> set[tuple[str, str, str]]:
    (group,) = client.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])[
        "SecurityGroups"
    ]
    rules = set()
    for permission in group["IpPermissions"]:
        protocol = permission["IpProtocol"]
        ports = "any"
        if protocol in ("tcp", "udp"):
            low, high = permission["FromPort"], permission["ToPort"]
            ports = str(low) if low == high else f"{low}-{high}"
        sources = [r["CidrIp"] for r in permission.get("IpRanges", [])]
        sources += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
        rules |= {("all" if protocol == "-1" else protocol, ports, s) for s in sources}
    return rules


def test_the_example_image_deploys_unchanged_on_ec2_and_on_local(
    world: Ec2World, ec2_proxy: Ec2Proxy
) -> None:
    ec2_proxy.boot_seconds, ec2_proxy.address_seconds = 3.0, 5.0  # poll a while
    with EmbeddedWorker(world.runtime, threads=2):
        on_aws = world.deploy("examples/images/debian-12", AWS)
        on_local = world.deploy("examples/images/debian-12", "local")
        runs = world.wait([on_aws, on_local])

    aws, local = runs[on_aws], runs[on_local]
    assert aws.state is RunState.READY, aws.message
    assert local.state is RunState.READY, local.message
    (instance,) = world.instances(**{RUN_TAG: on_aws})
    address = instance["PublicIpAddress"]
    assert aws.parameters["url.ssh"] == f"ssh://admin@{address}:22"
    assert aws.parameters["instance.id"] == aws.machine_id == instance["InstanceId"]
    # cpu 1, ram 1 on the example catalog: the cheapest type that fits.
    assert aws.parameters["flavor"] == instance["InstanceType"] == "t3.micro"
    assert (aws.parameters["guest.cpu"], aws.parameters["guest.ram_gb"]) == (2, 1.0)
    assert instance["ImageId"] == "ami-0eb11ab33f229b26c"
    assert instance["TagMap"][RUN_TAG] == on_aws
    assert [g["GroupName"] for g in instance["SecurityGroups"]] == ["slipway_managed"]
    assert local.parameters["flavor"] == "small"
    assert local.parameters["url.ssh"].startswith("ssh://debian@")
    # The token lookup, then polls until the instance ran and had an address.
    assert ec2_proxy.requests["DescribeInstances"] >= 3


def test_declared_and_managed_groups_get_their_rules_on_ec2(
    sqlite_world: Ec2World, moto_client: Any
) -> None:
    world = sqlite_world
    # Someone made a group "web" by hand: it is theirs, and Slipway leaves it be.
    web = moto_client.create_security_group(GroupName="web", Description="by hand")["GroupId"]
    moto_client.authorize_security_group_ingress(
        GroupId=web,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                        "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
    )  # fmt: skip
    nginx = world.deploy("examples/apps/nginx")
    debian = world.deploy("examples/images/debian-12")
    assert world.drive(nginx) is RunState.READY
    assert world.drive(debian) is RunState.READY

    assert _group_rules(moto_client, "slipway:alice:web") == {
        ("tcp", "22", "0.0.0.0/0"),
        ("tcp", "80", "0.0.0.0/0"),
        ("tcp", "22", "::/0"),
        ("tcp", "80", "::/0"),
    }  # as examples/security-groups/web.yaml says
    assert _group_rules(moto_client, "web") == {("tcp", "5432", "0.0.0.0/0")}
    assert _group_rules(moto_client, "slipway_managed") == {
        (r.protocol, r.ports or "any", r.source) for r in MANAGED_RULES
    }
    (instance,) = world.instances(**{RUN_TAG: nginx})
    assert [g["GroupName"] for g in instance["SecurityGroups"]] == ["slipway:alice:web"]
    assert instance["InstanceType"] == "t3.medium"  # cpu 2, ram 4
    run = world.runs.get(nginx)
    assert run.parameters["url.service.http"] == f"http://{instance['PublicIpAddress']}:80/"


def test_throttling_5xx_and_timeouts_are_retried_and_runs_converge(
    tmp_path: Path, ec2_proxy: Ec2Proxy, moto_client: Any
) -> None:
    ec2_proxy.timeout_seconds = 4.0
    world = _world(
        tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}", ec2_proxy, moto_client, read_timeout=3
    )
    world.ec2(AWS).list_machines({})  # the client's first call, before any fault
    faults = [
        ("throttle", 2, "DescribeSecurityGroups"),
        ("5xx", 1, "CreateSecurityGroup"),
        ("throttle", 2, "RunInstances"),
        ("5xx", 1, "RunInstances"),
        ("lost", 1, "RunInstances"),
        ("throttle", 2, "DescribeInstances"),
        ("5xx", 2, "DescribeInstances"),
        ("timeout", 1, "DescribeInstances"),
        ("timeout", 1, "RunInstances"),
    ]
    for kind, count, action in faults:
        ec2_proxy.inject(kind, count, action)
    with EmbeddedWorker(world.runtime, threads=3):
        run_ids = [world.deploy() for _ in range(3)]
        runs = world.wait(run_ids, timeout=180)
    world.close()

    assert {r.state for r in runs.values()} == {RunState.READY}, [r.message for r in runs.values()]
    assert sum(ec2_proxy.faults_served.values()) == sum(count for _, count, _ in faults)
    for run_id, run in runs.items():
        # A lost or timed-out RunInstances made no second instance.
        assert [i["InstanceId"] for i in world.instances(**{RUN_TAG: run_id})] == [run.machine_id]
    assert len(world.instances()) == 3


def test_an_instance_type_ec2_rejects_fails_the_run_with_ec2s_message(
    sqlite_world: Ec2World,
) -> None:
    world = sqlite_world
    catalog = (EXAMPLES / "catalogs" / f"{AWS}.yaml").read_text()
    catalog += "  - {name: t3.gigantic, cpu: 1, ram: 1, price: 0.001}\n"
    world.catalog.import_files(
        [load_text(catalog, "catalog.yaml", f"examples/catalogs/{AWS}")]
    )  # the cheapest fit for debian-12 is now a type that does not exist
    run_id = world.deploy()
    assert world.drive(run_id) is RunState.FAILED
    run = world.runs.get(run_id)
    assert run.step == "provisioning"
    assert "create machine: InvalidInstanceType.NotFound" in run.message  # moto's words
    assert "t3.gigantic" in run.message
    assert run.machine_id is None
    assert world.instances() == []


def test_an_unknown_ami_fails_the_run_with_ec2s_message(sqlite_world: Ec2World) -> None:
    world = sqlite_world
    text = (
        "kind: image\nlogin_user: admin\nsize: {cpu: 1, ram: 1, disk: 8}\n"
        "native: {aws-eu-west-1: {id: ami-0123456789abcdef0}}\n"
    )
    world.catalog.import_files([load_text(text, "ghost.yaml", "alice/ghost")])
    run_id = world.deploy("alice/ghost")
    assert world.drive(run_id) is RunState.FAILED
    run = world.runs.get(run_id)
    assert run.step == "provisioning"
    assert "InvalidAMIID.NotFound" in run.message and "ami-0123456789abcdef0" in run.message
    assert world.instances() == []


def test_terminate_releases_the_instance_from_booting_and_from_ready(
    sqlite_world: Ec2World, ec2_proxy: Ec2Proxy, moto_client: Any
) -> None:
    world = sqlite_world
    ec2_proxy.boot_seconds = 3600.0  # never leaves pending
    booting = world.deploy()
    world.runner.advance(booting)  # → provisioning, RunInstances → booting
    world.runner.advance(booting)  # still pending
    assert world.runs.get(booting).state is RunState.BOOTING
    (instance,) = world.instances(**{RUN_TAG: booting})
    world.runs.terminate(booting)
    assert world.drive(booting) is RunState.CANCELLED
    assert world.instances(**{RUN_TAG: booting}) == []

    ec2_proxy.boot_seconds = 0.0
    ready = world.deploy()
    assert world.drive(ready) is RunState.READY
    world.runs.terminate(ready)
    assert world.drive(ready) is RunState.TERMINATED
    assert world.instances() == []
    states = moto_client.describe_instances(
        InstanceIds=[instance["InstanceId"], str(world.runs.get(ready).parameters["instance.id"])]
    )["Reservations"]
    assert {i["State"]["Name"] for r in states for i in r["Instances"]} <= {
        "shutting-down",
        "terminated",
    }


class WorkerDied(BaseException):
    """The process ended: no handler of the runner sees it."""


class DiesAfterCreate:
    """A connector whose worker dies once RunInstances has answered, before the
    instance id is saved anywhere."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def create_machine(self, spec: MachineSpec) -> Any:
        self.inner.create_machine(spec)
        raise WorkerDied


def test_a_worker_dying_after_run_instances_does_not_make_a_second_instance(
    sqlite_world: Ec2World, ec2_proxy: Ec2Proxy
) -> None:
    world = sqlite_world
    run_id = world.deploy()
    doomed = world.make_runner("doomed", lambda name: DiesAfterCreate(world.connectors(name)))
    with pytest.raises(WorkerDied):  # → provisioning, then RunInstances and death
        doomed.advance(run_id)
    (first,) = world.instances(**{RUN_TAG: run_id})
    assert world.runs.get(run_id).machine_id is None  # never saved

    survivor = world.make_runner("survivor")
    assert survivor.requeue_due(lambda _: None) == [run_id]
    assert world.drive(run_id, survivor) is RunState.READY
    assert world.runs.get(run_id).machine_id == first["InstanceId"]
    assert [i["InstanceId"] for i in world.instances(**{RUN_TAG: run_id})] == [first["InstanceId"]]
    assert ec2_proxy.requests["RunInstances"] == 1  # found by its token: not run again


def test_reconcile_deletes_instances_of_runs_that_do_not_exist(
    sqlite_world: Ec2World, moto_client: Any
) -> None:
    world = sqlite_world
    live = world.deploy()
    assert world.drive(live) is RunState.READY
    ami = "ami-0eb11ab33f229b26c"
    orphan = moto_client.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance",
                            "Tags": [{"Key": RUN_TAG, "Value": "run-that-never-was"}]}],
    )["Instances"][0]["InstanceId"]  # fmt: skip
    unrelated = moto_client.run_instances(
        ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1
    )["Instances"][0]["InstanceId"]

    report = world.runner.reconcile([AWS])
    assert report.deleted == [orphan]
    assert report.adopted == [world.runs.get(live).machine_id]
    assert report.failed == []
    left = {i["InstanceId"] for i in world.instances()}
    assert left == {world.runs.get(live).machine_id, unrelated}  # not Slipway's: untouched


def test_an_unreachable_cloud_is_refused_before_a_run_exists(
    tmp_path: Path, moto_client: Any
) -> None:
    """The real EC2 connector, pointed at a port nothing listens on: the
    deploy says so at once and leaves no run behind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    world = Ec2World(
        tmp_path,
        f"sqlite:///{tmp_path / 'slipway.db'}",
        closed,
        moto_client,
        cloud_options={"max_attempts": 1, "connect_timeout": 2},
    )
    try:
        with pytest.raises(CloudError, match="check the credentials"):
            world.deploy()
        assert world.runs.list() == []
    finally:
        world.close()
