"""The connector contract, checked on the in-memory fake, plus the registry."""

import subprocess
import sys
from pathlib import Path

import pytest

from slipway.connectors.base import Connector, require, supports
from slipway.connectors.fake import FakeConnector
from slipway.connectors.registry import CloudDriver, unavailable_reason
from slipway.domain.machines import (
    RUN_TAG,
    Capability,
    Machine,
    MachineSpec,
    MachineState,
    PortForward,
    Rule,
    SecurityGroup,
    ingress_tcp_ports,
)
from slipway.errors import CloudError, InputError, NotFound, Unsupported


def _spec(token="run-1/create", **kwargs):
    values = {
        "name": "run-1",
        "image_id": "img-debian-12",
        "flavor": "small",
        "cpu": 2,
        "ram_gb": 2.0,
        "disk_gb": None,
        "user_data": "#cloud-config\n",
        "tags": {RUN_TAG: "run-1"},
        "client_token": token,
    }
    return MachineSpec(**{**values, **kwargs})


def test_fake_is_a_connector():
    assert isinstance(FakeConnector(), Connector)


def test_creating_twice_with_one_client_token_yields_one_machine():
    cloud = FakeConnector()
    first = cloud.create_machine(_spec())
    again = cloud.create_machine(_spec())
    assert again.id == first.id
    assert len(cloud.list_machines({RUN_TAG: "run-1"})) == 1


def test_machines_stay_pending_for_a_while_then_run_with_an_address():
    cloud = FakeConnector(boot_polls=2)
    machine = cloud.create_machine(_spec())
    states = [cloud.get_machine(machine.id) for _ in range(3)]
    assert [m.state for m in states] == [MachineState.PENDING] * 2 + [MachineState.RUNNING]
    assert states[0].address is None
    assert states[-1].address


def test_list_machines_filters_by_every_tag():
    cloud = FakeConnector()
    cloud.create_machine(_spec("a", tags={RUN_TAG: "run-1", "owner": "alice"}))
    cloud.create_machine(_spec("b", tags={RUN_TAG: "run-2", "owner": "alice"}))
    assert {m.tags[RUN_TAG] for m in cloud.list_machines({"owner": "alice"})} == {"run-1", "run-2"}
    assert [m.tags[RUN_TAG] for m in cloud.list_machines({RUN_TAG: "run-2"})] == ["run-2"]


def test_delete_is_idempotent_and_the_machine_is_gone():
    cloud = FakeConnector()
    machine = cloud.create_machine(_spec())
    cloud.delete_machine(machine.id)
    cloud.delete_machine(machine.id)
    with pytest.raises(NotFound):
        cloud.get_machine(machine.id)
    assert cloud.list_machines({}) == []


def test_injected_failure_surfaces_once():
    cloud = FakeConnector()
    cloud.fail_next["create_machine"] = CloudError("quota exceeded", cloud="fake")
    with pytest.raises(CloudError, match="fake: quota exceeded"):
        cloud.create_machine(_spec())
    assert cloud.create_machine(_spec()).state is MachineState.PENDING


def test_unknown_image_is_the_clouds_error():
    with pytest.raises(CloudError, match="image nope does not exist"):
        FakeConnector().create_machine(_spec(image_id="nope"))


def test_security_groups_must_exist_before_use_and_ensure_is_exact():
    cloud = FakeConnector()
    with pytest.raises(CloudError, match="security group web"):
        cloud.create_machine(_spec(security_groups=("web",)))
    assert cloud.check_security_group("web") is None
    rules = [Rule("tcp", "22"), Rule("tcp", "80"), Rule("tcp", "80")]
    cloud.ensure_security_group("web", rules)
    assert cloud.check_security_group("web").rules == (Rule("tcp", "22"), Rule("tcp", "80"))
    cloud.ensure_security_group("web", [Rule("tcp", "443")])
    assert cloud.check_security_group("web").rules == (Rule("tcp", "443"),)


def test_upload_image_then_create_from_it(tmp_path: Path):
    cloud = FakeConnector()
    path = tmp_path / "disk.qcow2"
    path.write_bytes(b"QFI\xfb")
    image = cloud.upload_image(path, "mine", {"os_distro": "debian"})
    assert image in cloud.images()
    assert cloud.create_machine(_spec(image_id=image.id)).image_id == image.id


def test_console_log_returns_the_tail():
    cloud = FakeConnector()
    machine = cloud.create_machine(_spec())
    cloud.set_console(machine.id, "\n".join(f"line {i}" for i in range(500)))
    assert cloud.console_log(machine.id, lines=2) == "line 498\nline 499"


def test_require_raises_the_connectors_reason_before_acting():
    cloud = FakeConnector(
        unsupported={Capability.SECURITY_GROUPS: "this cloud has no firewall API"}
    )
    assert not supports(cloud, Capability.SECURITY_GROUPS)
    assert supports(cloud, Capability.IMAGE_UPLOAD)
    with pytest.raises(Unsupported, match="security groups: this cloud has no firewall API"):
        require(cloud, Capability.SECURITY_GROUPS)
    require(cloud, Capability.IMAGE_UPLOAD)


def test_rule_problems_are_reported_in_words():
    assert Rule("tcp", "22").problems() == []
    assert Rule("icmp").port_range == (0, 65535)
    assert "protocol" in Rule("sctp", "22").problems()[0]
    assert "range like" in Rule("tcp", "http").problems()[0]
    assert "run upwards" in Rule("tcp", "90-80").problems()[0]
    assert "CIDR" in Rule("tcp", "22", "anywhere").problems()[0]


def test_ingress_tcp_ports_expands_small_ranges_and_skips_wide_ones():
    groups = [
        SecurityGroup("a", (Rule("tcp", "22"), Rule("tcp", "8000-8002"), Rule("udp", "53"))),
        SecurityGroup("b", (Rule("tcp", "1-65535"), Rule("tcp", "80"), Rule("all"))),
    ]
    assert ingress_tcp_ports(groups) == [22, 80, 8000, 8001, 8002]


def test_service_port_follows_the_forward():
    machine = Machine(
        "m", "m", MachineState.RUNNING, forwards=(PortForward(80, "127.0.0.1", 4080),)
    )
    assert machine.service_port(80) == 4080
    assert machine.service_port(443) == 443


def test_registry_names_every_driver_and_rejects_unknown_ones():
    assert [d.value for d in CloudDriver] == ["local", "ec2", "openstack", "exoscale"]
    with pytest.raises(InputError, match="unknown cloud driver 'azure'") as info:
        CloudDriver.parse("azure")
    assert "local, ec2, openstack, exoscale" in (info.value.hint or "")


def test_every_driver_is_available_and_an_unknown_one_says_so():
    assert all(unavailable_reason(driver.value) is None for driver in CloudDriver)
    assert unavailable_reason("azure") == "unknown cloud driver 'azure'"


def test_importing_the_registry_loads_no_cloud_sdk():
    code = (
        "import sys, slipway.connectors.registry\n"
        "sdks = ('boto3', 'botocore', 'qemu.qmp', 'pycdlib', 'exoscale', 'requests',"
        " 'openstack', 'keystoneauth1')\n"
        "bad = [m for m in sdks if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
