"""Runs on OpenStack: the example image deployed unchanged on the example
OpenStack cloud (``ultimum``), which the operator's configuration points at
the loopback lab — run service, runner, SQL store on SQLite, the real
OpenStack connector.

The lab's compute driver is fake: a server goes ACTIVE with an address but no
guest boots, so nothing answers SSH. Readiness comes from a prober that finds
the server by its address and answers as its guest would, with the flavor's
vCPUs and memory (as the EC2 runs do with moto). Everything else is
production code.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.config import OperatorTables
from slipway.domain.machines import RUN_TAG
from slipway.domain.runs import RunState
from slipway.errors import CloudError
from tests.integration.ec2_world import Ec2World, Probe
from tests.integration.operator_cli import operator_cli

CLOUD = "ultimum"  # examples/clouds/ultimum.yaml: driver openstack, region RegionOne
NATIVE_IMAGE = "7f4a0c93-2e5d-4f4b-8ad8-b3a6b2e8f201"  # examples/images/debian-12 on ultimum


def _sdk(clouds: Path, entry: str) -> Any:
    import openstack
    from openstack import config

    region = config.OpenStackConfig(config_files=[str(clouds)], load_envvars=False)
    return openstack.connection.Connection(config=region.get_one(cloud=entry))


def _servers_left(demo: Any, wait: float = 60.0) -> list[Any]:
    """The project's servers once Nova is done deleting: one it has just
    deleted can still be listed for a moment, as DELETED."""
    deadline = time.monotonic() + wait
    while (left := list(demo.compute.servers())) and time.monotonic() < deadline:
        time.sleep(0.3)
    return left


def ports_gone(sdk: Any, server_id: str, within: float = 30.0) -> bool:
    """Whether the server's ports are gone within ``within`` seconds: Nova
    lets Neutron delete them as it deletes the server, not always before the
    server is gone from its list."""
    deadline = time.monotonic() + within
    while list(sdk.network.ports(device_id=server_id)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


class FlavorProber:
    """Stands in for SSH: finds the server by its address and answers as its
    guest would — cloud-init done, the flavor's vCPUs and memory."""

    def __init__(self, sdk: Any) -> None:
        self.sdk = sdk

    def probe(self, host: str, port: int, user: str, private_key: str) -> Probe:
        assert "PRIVATE KEY" in private_key
        for server in self.sdk.compute.servers(details=True):
            addresses = [a["addr"] for net in (server.addresses or {}).values() for a in net]
            if host in addresses:
                return Probe(cpu=server.flavor.vcpus, ram_kb=server.flavor.ram * 1024)
        return Probe(reachable=False, problem=f"no server has the address {host}")


@pytest.fixture(scope="module")
def lab_for_the_examples(openstack_clouds: Path) -> Any:
    """The example's native image, kept under its id (Glance never reuses the
    id of a deleted image) and public, and the example catalog's flavor."""
    admin = _sdk(openstack_clouds, "lab-admin")
    if admin.image.find_image(NATIVE_IMAGE, ignore_missing=True) is None:
        from openstack.image.v2.image import Image

        image = Image.new(
            id=NATIVE_IMAGE, name="debian-12", disk_format="qcow2", container_format="bare",
            visibility="public",
        ).create(admin.image)  # fmt: skip
        image.upload(admin.image, data=b"QFI\xfb" + bytes(508), size=512)
    if admin.compute.find_flavor("Basic", ignore_missing=True) is None:
        admin.compute.create_flavor(name="Basic", vcpus=1, ram=1024, disk=10, is_public=True)
    return admin


@pytest.fixture
def world(tmp_path: Path, openstack_clouds: Path, lab_for_the_examples: Any) -> Iterator[Ec2World]:
    demo = _sdk(openstack_clouds, "lab-demo")
    clouds = OperatorTables.of({CLOUD: {"cloud": "lab-demo", "clouds_yaml": str(openstack_clouds)}})
    world = Ec2World(
        tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}", "", None,
        clouds=clouds, prober=FlavorProber(demo),
    )  # fmt: skip
    yield world
    world.close()
    for server in demo.compute.servers():
        demo.compute.delete_server(server, ignore_missing=True)
        demo.compute.wait_for_delete(server, interval=0.3, wait=60)


def test_the_example_image_deploys_unchanged_on_openstack_and_terminates_clean(
    world: Ec2World, openstack_clouds: Path
) -> None:
    demo = _sdk(openstack_clouds, "lab-demo")
    run_id = world.deploy("examples/images/debian-12", CLOUD)
    assert world.drive(run_id) is RunState.READY, world.runs.get(run_id).message

    run = world.runs.get(run_id)
    (server,) = list(demo.compute.servers(details=True))
    address = server.addresses["public"][0]["addr"]
    assert run.parameters["url.ssh"] == f"ssh://debian@{address}:22"
    assert run.parameters["instance.id"] == run.machine_id == server.id
    assert run.parameters["flavor"] == "Basic" == server.flavor.name  # cpu 1, ram 1
    assert (run.parameters["guest.cpu"], run.parameters["guest.ram_gb"]) == (1, 1.0)
    assert server.image.id == NATIVE_IMAGE
    assert server.metadata[RUN_TAG] == run_id
    (port,) = list(demo.network.ports(device_id=server.id))
    managed = demo.network.find_security_group("slipway_managed")
    assert port.security_group_ids == [managed.id]

    world.runs.terminate(run_id)
    assert world.drive(run_id) is RunState.TERMINATED  # Nova is deleting it: gone soon
    demo.compute.wait_for_delete(server, interval=0.3, wait=60)
    assert _servers_left(demo) == []
    assert ports_gone(demo, server.id)


def test_sizes_refresh_saves_the_labs_flavors_as_the_examples_catalog(
    tmp_path: Path, openstack_clouds: Path, lab_for_the_examples: Any
) -> None:
    slipway = operator_cli(
        tmp_path, f'[clouds.{CLOUD}]\ncloud = "lab-demo"\nclouds_yaml = "{openstack_clouds}"\n'
    )

    slipway("import", "examples")
    refreshed = slipway("sizes", "refresh", "--cloud", CLOUD)
    assert (refreshed["catalog"], refreshed["version"]) == (f"examples/catalogs/{CLOUD}-2015", 2)
    flavors = {f["name"]: f for f in slipway("sizes", "list", "--cloud", CLOUD)}
    assert (flavors["m1.tiny"]["cpu"], flavors["m1.tiny"]["ram"], flavors["m1.tiny"]["disk"]) == (
        1,
        0.5,
        1.0,
    )
    assert (flavors["Basic"]["cpu"], flavors["Basic"]["ram"]) == (1, 1.0)


def test_a_wrong_password_is_found_before_a_run_exists(
    tmp_path: Path, openstack_clouds: Path, lab_for_the_examples: Any
) -> None:
    """The real connector, a clouds.yaml entry whose password Keystone
    refuses: the deploy says so at once and records no run."""
    import yaml

    entries = yaml.safe_load(openstack_clouds.read_text())
    wrong = entries["clouds"]["lab-demo"]
    wrong["auth"]["password"] = "not-the-password"
    clouds_file = tmp_path / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump({"clouds": {"lab-wrong": wrong}}))
    clouds = OperatorTables.of({CLOUD: {"cloud": "lab-wrong", "clouds_yaml": str(clouds_file)}})
    world = Ec2World(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}", "", None, clouds=clouds)
    try:
        with pytest.raises(CloudError, match="401"):
            world.deploy("examples/images/debian-12", CLOUD)
        assert world.runs.list() == []
    finally:
        world.close()


class _Killed(BaseException):
    """A worker's end in the middle of a step, as kill -9 would end it."""


class _DiesAfterCreating:
    """The lab's connector for a worker that dies the moment Nova has made
    the server, before the run records it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_machine(self, spec: Any) -> Any:
        self._inner.create_machine(spec)
        raise _Killed


def test_a_worker_killed_after_the_create_leaves_one_server_the_next_adopts(
    world: Ec2World, openstack_clouds: Path
) -> None:
    demo = _sdk(openstack_clouds, "lab-demo")
    run_id = world.deploy("examples/images/debian-12", CLOUD)
    dying = world.make_runner("w1", lambda name: _DiesAfterCreating(world.connectors(name)))
    with pytest.raises(_Killed):
        for _ in range(10):
            dying.advance(run_id)
    assert world.runs.get(run_id).machine_id is None  # the run never heard of it
    (made,) = list(demo.compute.servers())

    world.runner = world.make_runner("w2")
    assert world.drive(run_id) is RunState.READY, world.runs.get(run_id).message
    (server,) = list(demo.compute.servers())
    assert server.id == made.id == world.runs.get(run_id).machine_id

    world.runs.terminate(run_id)
    assert world.drive(run_id) is RunState.TERMINATED
    demo.compute.wait_for_delete(server, interval=0.3, wait=60)
    assert _servers_left(demo) == []


def test_a_size_resolves_against_the_refreshed_catalog(
    world: Ec2World, openstack_clouds: Path
) -> None:
    """After ``sizes refresh``, ``--size cpu=2,ram=4`` picks the lab's m1.medium."""
    from slipway.domain.sizes import Size
    from slipway.services.deploy import DeployRequest

    demo = _sdk(openstack_clouds, "lab-demo")
    world.catalog.refresh_catalog(CLOUD, world.connectors(CLOUD).flavors(), "the lab's flavors")
    request = DeployRequest("examples/images/debian-12", CLOUD, size=Size(cpu=2, ram=4))
    run, _ = world.runs.deploy(request)
    assert run.parameters["flavor"] == "m1.medium"
    assert world.drive(run.id) is RunState.READY, world.runs.get(run.id).message
    (server,) = list(demo.compute.servers(details=True))
    assert server.flavor.name == "m1.medium"
    ready = world.runs.get(run.id)
    assert (ready.parameters["guest.cpu"], ready.parameters["guest.ram_gb"]) == (2, 4.0)
    world.runs.terminate(run.id)
    assert world.drive(run.id) is RunState.TERMINATED
    demo.compute.wait_for_delete(server, interval=0.3, wait=60)
