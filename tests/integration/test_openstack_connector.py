"""The OpenStack connector against a real OpenStack on loopback
(``tests/openstack_lab``: Keystone, Glance, Placement, Nova with the fake
compute driver, Neutron), named by ``SLIPWAY_TEST_OPENSTACK_CLOUDS``.

Under the fake driver a server goes ACTIVE and gets a fixed address from
Neutron, but no guest boots: nothing here logs in to a machine.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.connectors.openstack import OpenStackConnector, _images
from slipway.connectors.openstack._groups import MARKER
from slipway.connectors.registry import CloudDriver
from slipway.domain.machines import RUN_TAG, Machine, MachineSpec, MachineState, Rule
from slipway.errors import CloudError, NotFound
from tests.integration.test_openstack_runs import ports_gone

CLOUD = "lab"


def _connect(clouds: Path, entry: str = "lab-demo", **options: object) -> OpenStackConnector:
    connector = CloudDriver.OPENSTACK.connect(
        CLOUD, {"credentials": entry, "clouds_yaml": str(clouds), "region": "RegionOne", **options}
    )
    assert isinstance(connector, OpenStackConnector)
    return connector


@pytest.fixture
def cloud(openstack_clouds: Path) -> Iterator[OpenStackConnector]:
    """The demo project, emptied of what a test left: servers, groups, images."""
    connector = _connect(openstack_clouds)
    yield connector
    sdk = connector.connection
    for server in sdk.compute.servers(details=True):
        sdk.compute.delete_server(server, ignore_missing=True)
    for server in sdk.compute.servers():
        sdk.compute.wait_for_delete(server, interval=0.3, wait=60)
    for group in sdk.network.security_groups(project_id=sdk.current_project_id):
        if group.name != "default":
            sdk.network.delete_security_group(group, ignore_missing=True)
    for image in sdk.image.images(owner=sdk.current_project_id):
        sdk.image.delete_image(image, ignore_missing=True)


@pytest.fixture(scope="session")
def tiny_image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real qcow2 file, 16 MiB virtual, a few hundred KiB on disk."""
    import subprocess

    path = tmp_path_factory.mktemp("openstack") / "tiny.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return path


@pytest.fixture
def image_id(cloud: OpenStackConnector, tiny_image: Path) -> str:
    return cloud.upload_image(tiny_image, f"test-{uuid.uuid4().hex[:8]}", {}).id


def _spec(image_id: str, run: str = "run-1", **changes: object) -> MachineSpec:
    values: dict[str, object] = {
        "name": run,
        "image_id": image_id,
        "flavor": "m1.tiny",
        "cpu": 1,
        "ram_gb": 0.5,
        "disk_gb": None,
        "user_data": "#cloud-config\nruncmd: [echo hello]\n",
        "tags": {RUN_TAG: run},
        "client_token": f"{run}/create",
    }
    return MachineSpec(**{**values, **changes})  # type: ignore[arg-type]


def _wait_running(cloud: OpenStackConnector, machine_id: str, timeout: float = 60) -> Machine:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        machine = cloud.get_machine(machine_id)
        if machine.state is MachineState.RUNNING and machine.address:
            return machine
        assert machine.state is MachineState.PENDING, machine
        time.sleep(0.3)
    raise AssertionError(f"{machine_id} not running after {timeout} s")


def _wait_gone(cloud: OpenStackConnector, machine_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            assert cloud.get_machine(machine_id).state is MachineState.TERMINATED
        except NotFound:
            return
        time.sleep(0.3)
    raise AssertionError(f"{machine_id} still known after {timeout} s")


# -- authentication -----------------------------------------------------------------


def test_password_and_application_credential_reach_the_demo_project(
    openstack_clouds: Path,
) -> None:
    by_password = _connect(openstack_clouds, "lab-demo")
    by_credential = _connect(openstack_clouds, "lab-demo-appcred")
    assert [f.name for f in by_credential.flavors()] == [f.name for f in by_password.flavors()]
    project = by_password.connection.current_project_id
    assert by_credential.connection.current_project_id == project


def test_a_wrong_password_is_the_clouds_refusal(openstack_clouds: Path, tmp_path: Path) -> None:
    import yaml

    clouds = yaml.safe_load(openstack_clouds.read_text())
    clouds["clouds"]["lab-demo"]["auth"]["password"] = "not-the-password"
    wrong = tmp_path / "clouds.yaml"
    wrong.write_text(yaml.safe_dump(clouds))
    with pytest.raises(CloudError, match="HTTP 401: The request you have made requires") as info:
        _connect(wrong).flavors()
    assert str(info.value).startswith(f"{CLOUD}: list flavors: ")
    assert info.value.hint is not None and "credentials in clouds.yaml" in info.value.hint


def test_an_entry_missing_from_clouds_yaml_is_said_so(openstack_clouds: Path) -> None:
    with pytest.raises(CloudError, match=r"clouds\.yaml entry 'nope'"):
        _connect(openstack_clouds, "nope")


def test_an_unreachable_keystone_is_said_so(openstack_clouds: Path, tmp_path: Path) -> None:
    import yaml

    clouds = yaml.safe_load(openstack_clouds.read_text())
    clouds["clouds"]["lab-demo"]["auth"]["auth_url"] = "http://127.0.0.1:9/v3"
    moved = tmp_path / "clouds.yaml"
    moved.write_text(yaml.safe_dump(clouds))
    with pytest.raises(CloudError, match="unreachable"):
        _connect(moved).list_machines({})


# -- catalog and images ---------------------------------------------------------------


def test_flavors_become_the_catalog(cloud: OpenStackConnector) -> None:
    flavors = {f.name: f for f in cloud.flavors()}
    tiny, medium = flavors["m1.tiny"], flavors["m1.medium"]
    assert (tiny.cpu, tiny.ram, tiny.disk) == (1, 0.5, 1.0)
    assert (medium.cpu, medium.ram, medium.disk) == (2, 4.0, 40.0)


def test_an_uploaded_image_keeps_its_properties_and_is_listed(
    cloud: OpenStackConnector, tiny_image: Path
) -> None:
    properties = {"os_distro": "debian", "os_version": "12", "slipway_appliance": "a-1"}
    image = cloud.upload_image(tiny_image, "test-debian", properties)
    assert image.ready and image.name == "test-debian"
    assert image.properties == properties
    (listed,) = [i for i in cloud.images() if i.id == image.id]
    assert listed == image
    stored = cloud.connection.image.get_image(image.id)
    assert (stored.disk_format, stored.visibility, stored.size) == (
        "qcow2",
        "private",
        tiny_image.stat().st_size,
    )


def test_an_image_stays_hidden_until_its_checksum_is_verified(
    cloud: OpenStackConnector, tiny_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, bool]] = []
    verify = _images._verify

    def observed(cloud_name: str, image: Any, reader: Any, size: int, path: Path) -> None:
        seen.append((bool(image.is_hidden), any(i.id == image.id for i in cloud.images())))
        verify(cloud_name, image, reader, size, path)

    monkeypatch.setattr(_images, "_verify", observed)
    image = cloud.upload_image(tiny_image, "test-hidden", {})
    assert seen == [(True, False)]  # uploaded and active, but hidden and not listed
    assert image.ready and any(i.id == image.id for i in cloud.images())


def test_an_upload_glance_stored_differently_is_deleted(
    cloud: OpenStackConnector, tiny_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = _images._HashingReader.read

    def damaged(self: Any, size: int = 1 << 20) -> bytes:
        chunk: bytes = read(self, size)
        self.sha512.update(b"!")  # the bytes sent are not the bytes hashed
        return chunk

    monkeypatch.setattr(_images._HashingReader, "read", damaged)
    with pytest.raises(CloudError, match="upload image test-damaged: Glance holds") as info:
        cloud.upload_image(tiny_image, "test-damaged", {})
    assert info.value.hint is not None and "upload it again" in info.value.hint
    sdk = cloud.connection
    assert "test-damaged" not in [i.name for i in sdk.image.images(owner=sdk.current_project_id)]


def test_a_file_whose_sha512_is_known_is_not_hashed_again_but_still_checked(
    cloud: OpenStackConnector, tiny_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hashlib
    import shutil
    import types

    from slipway.imagekit.store import remember_sha512

    good = tmp_path / "good.qcow2"
    shutil.copyfile(tiny_image, good)
    remember_sha512(good, hashlib.sha512(good.read_bytes()).hexdigest())
    bad = tmp_path / "bad.qcow2"
    shutil.copyfile(tiny_image, bad)
    remember_sha512(bad, "0" * 128)  # bytes that changed after they were hashed

    class NoHashing:
        def update(self, data: bytes) -> None:
            raise AssertionError("the upload hashed what it sent again")

    monkeypatch.setattr(
        _images, "hashlib", types.SimpleNamespace(sha512=NoHashing, md5=lambda **_: NoHashing())
    )

    assert cloud.upload_image(good, "test-known", {}).ready
    with pytest.raises(CloudError, match="Glance holds"):
        cloud.upload_image(bad, "test-known-bad", {})
    sdk = cloud.connection
    assert "test-known-bad" not in [i.name for i in sdk.image.images(owner=sdk.current_project_id)]


# -- machines ---------------------------------------------------------------------------


def test_a_machine_is_created_once_found_by_its_tags_and_deleted(
    cloud: OpenStackConnector, image_id: str
) -> None:
    first = cloud.create_machine(_spec(image_id))
    assert first.state is MachineState.PENDING
    again = cloud.create_machine(_spec(image_id))
    assert again.id == first.id

    running = _wait_running(cloud, first.id)
    assert running.flavor == "m1.tiny" and running.image_id == image_id
    assert running.address is not None and running.address.startswith("10.20.0.")
    assert running.tags == {RUN_TAG: "run-1"}
    assert [m.id for m in cloud.list_machines({RUN_TAG: "run-1"})] == [first.id]
    assert [m.id for m in cloud.list_machines({})] == [first.id]
    assert cloud.list_machines({RUN_TAG: "run-2"}) == []
    assert "FAKE CONSOLE OUTPUT" in cloud.console_log(first.id)

    cloud.delete_machine(first.id)
    cloud.delete_machine(first.id)
    assert cloud.list_machines({RUN_TAG: "run-1"}) == []
    _wait_gone(cloud, first.id)


def test_user_data_reaches_nova_as_given(
    cloud: OpenStackConnector, image_id: str, openstack_clouds: Path
) -> None:
    import base64

    machine = cloud.create_machine(_spec(image_id))
    admin = _connect(openstack_clouds, "lab-admin").connection
    reply = admin.compute.get(f"/servers/{machine.id}", microversion="2.3").json()
    user_data = reply["server"]["OS-EXT-SRV-ATTR:user_data"]
    assert base64.b64decode(user_data).decode() == "#cloud-config\nruncmd: [echo hello]\n"


def test_a_lost_answer_to_a_create_does_not_make_a_second_server(
    cloud: OpenStackConnector, image_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from keystoneauth1.exceptions import ConnectFailure

    compute = cloud.connection.compute
    create = compute.create_server
    posts: list[str] = []

    def lossy(**attrs: Any) -> Any:
        posts.append(attrs["name"])
        server = create(**attrs)
        if len(posts) == 1:
            raise ConnectFailure("connection reset before the answer arrived")
        return server

    monkeypatch.setattr(compute, "create_server", lossy)
    machine = cloud.create_machine(_spec(image_id))
    assert posts == ["run-1"]  # the retry found the first server by its token
    assert [m.id for m in cloud.list_machines({RUN_TAG: "run-1"})] == [machine.id]


def test_terminating_leaves_no_server_and_no_port_of_the_run(
    cloud: OpenStackConnector, image_id: str
) -> None:
    cloud.ensure_security_group("web", [Rule("tcp", "22")])
    machine = _wait_running(
        cloud, cloud.create_machine(_spec(image_id, security_groups=("web",))).id
    )
    ports = list(cloud.connection.network.ports(device_id=machine.id))
    assert len(ports) == 1
    group = cloud.check_security_group("web")
    assert group is not None and ports[0].security_group_ids == [group.id]

    cloud.delete_machine(machine.id)
    _wait_gone(cloud, machine.id)
    assert ports_gone(cloud.connection, machine.id)
    assert cloud.list_machines({}) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"image_id": "00000000-0000-0000-0000-000000000000"}, "HTTP 400: Can not find .* image"),
        ({"flavor": "m1.gigantic"}, "flavor m1.gigantic does not exist"),
        ({"security_groups": ("nope",)}, "security group nope does not exist"),
    ],
)
def test_bad_requests_fail_with_the_clouds_message(
    cloud: OpenStackConnector, image_id: str, change: dict[str, object], message: str
) -> None:
    spec = _spec(**{"image_id": image_id, **change})  # type: ignore[arg-type]
    with pytest.raises(CloudError, match=message) as info:
        cloud.create_machine(spec)
    assert str(info.value).startswith(f"{CLOUD}: ")
    assert cloud.list_machines({}) == []


def test_a_machine_nova_never_knew_is_not_found(cloud: OpenStackConnector) -> None:
    with pytest.raises(NotFound):
        cloud.get_machine("00000000-0000-0000-0000-000000000000")
    cloud.delete_machine("00000000-0000-0000-0000-000000000000")


# -- security groups ----------------------------------------------------------------------


def _rule_ids(cloud: OpenStackConnector, name: str) -> set[str]:
    group = cloud.connection.network.find_security_group(name)
    assert group is not None
    return {r["id"] for r in group.security_group_rules if r["direction"] == "ingress"}


def test_a_group_is_brought_to_exactly_the_declared_rules(cloud: OpenStackConnector) -> None:
    assert cloud.check_security_group("web") is None
    first = cloud.ensure_security_group("web", [Rule("tcp", "22"), Rule("tcp", "80")])
    group = cloud.connection.network.get_security_group(first.id)
    assert MARKER in group.description

    cloud.ensure_security_group(
        "web", [Rule("tcp", "80"), Rule("tcp", "8000-8080", "10.0.0.0/8"), Rule("all", "", "::/0")]
    )
    seen = cloud.check_security_group("web")
    assert seen is not None and seen.id == first.id
    assert set(seen.rules) == {
        Rule("tcp", "80"),
        Rule("tcp", "8000-8080", "10.0.0.0/8"),
        Rule("all", "", "::/0"),
    }
    before = _rule_ids(cloud, "web")
    cloud.ensure_security_group(
        "web", [Rule("all", "", "::/0"), Rule("tcp", "8000-8080", "10.0.0.0/8"), Rule("tcp", "80")]
    )
    assert _rule_ids(cloud, "web") == before  # unchanged: not one rule deleted and re-added


def test_every_port_and_every_protocol_round_trip(cloud: OpenStackConnector) -> None:
    rules = [Rule("tcp", "0-65535"), Rule("udp", "53"), Rule("icmp"), Rule("all")]
    cloud.ensure_security_group("slipway_managed", rules)
    before = _rule_ids(cloud, "slipway_managed")
    cloud.ensure_security_group("slipway_managed", rules)
    assert _rule_ids(cloud, "slipway_managed") == before
    seen = cloud.check_security_group("slipway_managed")
    assert seen is not None
    assert set(seen.rules) == {Rule("tcp"), Rule("udp", "53"), Rule("icmp"), Rule("all")}


def test_a_group_slipway_did_not_make_is_left_as_it_is(cloud: OpenStackConnector) -> None:
    network = cloud.connection.network
    theirs = network.create_security_group(name="made-by-hand", description="not Slipway's")
    network.create_security_group_rule(
        security_group_id=theirs.id, direction="ingress", ethertype="IPv4", protocol="tcp",
        port_range_min=5432, port_range_max=5432, remote_ip_prefix="0.0.0.0/0",
    )  # fmt: skip
    with pytest.raises(CloudError, match="made-by-hand was not made by Slipway") as info:
        cloud.ensure_security_group("made-by-hand", [Rule("tcp", "22")])
    assert info.value.hint is not None
    group = cloud.check_security_group("made-by-hand")
    assert group is not None and group.rules == (Rule("tcp", "5432"),)


def test_a_bad_rule_is_refused_before_anything_is_made(cloud: OpenStackConnector) -> None:
    from slipway.errors import InputError

    with pytest.raises(InputError, match="protocol must be"):
        cloud.ensure_security_group("web", [Rule("sctp", "22")])
    assert cloud.check_security_group("web") is None
