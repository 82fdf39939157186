"""One contract, every connector: the same tests run against the in-memory
fake, the local cloud (real QEMU), EC2 (moto over HTTP), Exoscale (the fake
API over HTTP) and OpenStack (the loopback lab, skipped when it is not up).
What the port promises (docs/connectors.md) holds for each, and what a
connector cannot do it refuses up front, as it declares."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from slipway.connectors.base import Connector, supports
from slipway.connectors.fake import FakeConnector
from slipway.connectors.registry import CloudDriver
from slipway.domain.machines import RUN_TAG, Capability, CloudImage, MachineSpec, MachineState, Rule
from slipway.errors import NotFound, Unsupported
from tests.integration.ec2_proxy import Ec2Proxy


@dataclass
class Backend:
    """A connector and what a machine on it is made of."""

    connector: Connector
    image_id: str
    flavor: str
    cpu: int
    ram_gb: float
    cleanup: list[Callable[[], None]] = field(default_factory=list)
    lists_the_image: bool = True  # EC2 lists the account's own AMIs, not Amazon's

    def spec(self, token: str, run: str = "contract-1") -> MachineSpec:
        return MachineSpec(
            name=run,
            image_id=self.image_id,
            flavor=self.flavor,
            cpu=self.cpu,
            ram_gb=self.ram_gb,
            disk_gb=None,
            user_data="#cloud-config\n",
            tags={RUN_TAG: run},
            client_token=token,
        )


def _fake(_: pytest.FixtureRequest, __: Path) -> Backend:
    return Backend(
        FakeConnector("fake", images=[CloudImage("img-1", "debian-12")]), "img-1", "small", 1, 1.0
    )


def _local(_: pytest.FixtureRequest, tmp: Path) -> Backend:
    from slipway.imagekit.store import ImageStore

    disk = tmp / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    ImageStore(tmp / "data" / "images").import_file(disk, "contract")
    connector = CloudDriver.LOCAL.connect(
        "local-contract", {"data_dir": str(tmp / "data"), "accelerator": "tcg"}
    )
    return Backend(connector, "contract", "c1-m0.5", 1, 0.5)


def _ec2(request: pytest.FixtureRequest, _: Path) -> Backend:
    proxy: Ec2Proxy = request.getfixturevalue("ec2_proxy")
    connector = CloudDriver.EC2.connect(
        "aws-contract", {"region": "us-east-1", "endpoint_url": proxy.url}
    )
    client: Any = connector.client  # type: ignore[attr-defined]
    images = client.describe_images(Owners=["amazon"])["Images"]
    ami = next(i["ImageId"] for i in images if i.get("RootDeviceType") == "ebs")
    return Backend(connector, ami, "t3.micro", 2, 1.0, lists_the_image=False)


def _exoscale(_: pytest.FixtureRequest, __: Path) -> Backend:
    from tests.integration.exoscale_fake import FakeExoscale

    zone, template = "ch-gva-2", "3e5f0a92-2b8c-4d4f-a6e1-4e3f2a1b1201"
    fake = FakeExoscale().start()
    fake.add_template(zone, template, "Debian 12 (Slipway)", size_gb=4)
    connector = CloudDriver.EXOSCALE.connect(
        "exo-contract",
        {
            "region": zone,
            "endpoint": fake.endpoint,
            "api_key": fake.key,
            "api_secret": fake.secret,
            "poll_interval": 0.02,
        },
    )
    return Backend(connector, template, "Small", 2, 2.0, cleanup=[fake.stop])


def _openstack(request: pytest.FixtureRequest, tmp: Path) -> Backend:
    clouds: Path = request.getfixturevalue("openstack_clouds")
    connector = CloudDriver.OPENSTACK.connect(
        "lab-contract",
        {"credentials": "lab-demo", "clouds_yaml": str(clouds), "region": "RegionOne"},
    )
    disk = tmp / "image.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    image = connector.upload_image(disk, f"contract-{tmp.name[-12:]}", {})
    sdk: Any = connector.connection  # type: ignore[attr-defined]

    def forget() -> None:
        for server in sdk.compute.servers():
            sdk.compute.wait_for_delete(server, interval=0.3, wait=60)
        for group in sdk.network.security_groups(project_id=sdk.current_project_id):
            if group.name != "default":
                sdk.network.delete_security_group(group, ignore_missing=True)
        for owned in sdk.image.images(owner=sdk.current_project_id):
            sdk.image.delete_image(owned, ignore_missing=True)

    return Backend(connector, image.id, "m1.tiny", 1, 0.5, cleanup=[forget])


BACKENDS = {
    "fake": _fake,
    "local": _local,
    "ec2": _ec2,
    "exoscale": _exoscale,
    "openstack": _openstack,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    made = BACKENDS[request.param](request, tmp_path)
    try:
        yield made
    finally:
        for machine in made.connector.list_machines({}):
            made.connector.delete_machine(machine.id)
        for step in made.cleanup:
            step()


def test_the_cloud_answers_the_check(backend: Backend) -> None:
    backend.connector.check()


def test_a_machine_is_created_found_by_its_tags_and_deleted(backend: Backend) -> None:
    cloud = backend.connector
    machine = cloud.create_machine(backend.spec("contract-1/create"))
    assert machine.state in (MachineState.PENDING, MachineState.RUNNING)
    assert cloud.get_machine(machine.id).id == machine.id
    assert [m.id for m in cloud.list_machines({RUN_TAG: "contract-1"})] == [machine.id]
    assert cloud.list_machines({RUN_TAG: "someone-else"}) == []
    cloud.delete_machine(machine.id)
    cloud.delete_machine(machine.id)  # a gone machine deletes without complaint
    assert cloud.list_machines({RUN_TAG: "contract-1"}) == []
    with contextlib.suppress(NotFound):  # forgotten at once, or terminated first
        assert cloud.get_machine(machine.id).state is MachineState.TERMINATED


def test_the_same_client_token_makes_one_machine(backend: Backend) -> None:
    cloud = backend.connector
    first = cloud.create_machine(backend.spec("contract-1/create"))
    again = cloud.create_machine(backend.spec("contract-1/create"))
    assert again.id == first.id
    assert len(cloud.list_machines({RUN_TAG: "contract-1"})) == 1


def test_a_security_group_is_brought_to_exactly_its_rules(backend: Backend) -> None:
    cloud = backend.connector
    if not supports(cloud, Capability.SECURITY_GROUPS):
        pytest.skip(f"{cloud.cloud} declares no security groups")
    ssh, web = Rule("tcp", "22", "0.0.0.0/0"), Rule("tcp", "80", "0.0.0.0/0")
    for rules in ((ssh,), (ssh, web), (web,), (web,)):
        cloud.ensure_security_group("slipway:contract:web", rules)
        held = cloud.check_security_group("slipway:contract:web")
        assert held is not None and set(held.rules) == set(rules)
    assert cloud.check_security_group("slipway:contract:none") is None


def test_flavors_and_images_are_listed(backend: Backend) -> None:
    flavors = backend.connector.flavors()
    assert flavors and all(f.cpu >= 1 and f.ram > 0 for f in flavors)
    assert backend.flavor.lower() in {f.name.lower() for f in flavors}
    images = backend.connector.images()
    assert all(i.id and i.name for i in images)
    if backend.lists_the_image:
        assert backend.image_id in {i.id for i in images}


def test_what_a_cloud_cannot_do_it_refuses_as_declared(backend: Backend, tmp_path: Path) -> None:
    cloud = backend.connector
    disk = tmp_path / "upload.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    if supports(cloud, Capability.IMAGE_UPLOAD):
        uploaded = cloud.upload_image(disk, "contract-upload", {"os_distro": "debian"})
        assert uploaded.id in {i.id for i in cloud.images()}
    else:
        with pytest.raises(Unsupported, match=cloud.unsupported[Capability.IMAGE_UPLOAD][:30]):
            cloud.upload_image(disk, "contract-upload", {})
    if not supports(cloud, Capability.CONSOLE_LOG):
        machine = cloud.create_machine(backend.spec("contract-1/console"))
        with pytest.raises(Unsupported):
            cloud.console_log(machine.id, 10)
