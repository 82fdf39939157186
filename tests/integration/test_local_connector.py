"""The local connector with real QEMU and qemu-img, on a 512-byte guest: a boot
sector that prints a line on the serial port and halts. Everything but a Linux
boot is exercised in about a second per test."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pycdlib
import pytest

from slipway.connectors.local import LocalConnector, connect
from slipway.domain.machines import RUN_TAG, MachineSpec, MachineState, Rule
from slipway.errors import CloudError, Conflict, NotFound
from tests.qemu_support import BOOT_MARKER, BOOT_SECTOR, qemu_pids, sector_image

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None,
    reason="needs qemu-system-x86 and qemu-utils",
)


@pytest.fixture
def base_image(tmp_path: Path) -> Path:
    # The image store's layout, without metadata.
    return sector_image(BOOT_SECTOR, tmp_path / "images" / "tiny.qcow2")


@pytest.fixture
def cloud(tmp_path: Path, base_image: Path):
    connector = connect("local", {"data_dir": tmp_path, "accelerator": "tcg"})
    yield connector
    for machine in connector.list_machines({}):
        connector.delete_machine(machine.id)


def _spec(token: str = "run-1/create", **kwargs: object) -> MachineSpec:
    values: dict[str, object] = {
        "name": "run-1",
        "image_id": "tiny",
        "flavor": "c1-m0.5",
        "cpu": 1,
        "ram_gb": 0.25,
        "disk_gb": 1,
        "user_data": "#cloud-config\n",
        "tags": {RUN_TAG: "run-1"},
        "client_token": token,
    }
    return MachineSpec(**{**values, **kwargs})  # type: ignore[arg-type]


def test_machine_runs_with_its_serial_console_and_forwards(cloud: LocalConnector, tmp_path):
    cloud.ensure_security_group("web", [Rule("tcp", "22"), Rule("tcp", "80"), Rule("udp", "53")])
    machine = cloud.create_machine(_spec(security_groups=("web",)))
    assert machine.state is MachineState.RUNNING
    assert machine.address == "127.0.0.1"
    assert machine.ssh_port != 22
    assert [f.guest_port for f in machine.forwards] == [80]
    assert machine.service_port(80) == machine.forwards[0].host_port
    folder = tmp_path / "machines" / machine.id
    for name in ("machine.json", "disk.qcow2", "seed.iso", "qemu.pid", "console.log"):
        assert (folder / name).exists(), name
    kept = json.loads((folder / "security-groups.json").read_text())
    assert kept == [{"name": "web", "rules": [
        {"protocol": "tcp", "ports": "22", "source": "0.0.0.0/0"},
        {"protocol": "tcp", "ports": "80", "source": "0.0.0.0/0"},
        {"protocol": "udp", "ports": "53", "source": "0.0.0.0/0"},
    ]}]  # fmt: skip
    for _ in range(100):
        if BOOT_MARKER.decode() in cloud.console_log(machine.id):
            break
        time.sleep(0.05)
    assert BOOT_MARKER.decode() in cloud.console_log(machine.id, lines=5)


def test_overlay_is_copy_on_write_and_grown_to_the_disk_size(cloud, base_image, tmp_path):
    before = base_image.read_bytes()
    machine = cloud.create_machine(_spec(disk_gb=2))
    overlay = tmp_path / "machines" / machine.id / "disk.qcow2"
    info = json.loads(subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(overlay)],
        capture_output=True, text=True, check=True,
    ).stdout)  # fmt: skip
    assert info["virtual-size"] == 2 * 1024**3
    assert info["backing-filename"] == str(base_image.resolve())
    assert info["backing-filename-format"] == "qcow2"
    assert base_image.read_bytes() == before


def test_seed_is_an_iso_labelled_cidata_with_the_user_data(cloud, tmp_path):
    machine = cloud.create_machine(_spec(user_data="#cloud-config\nhostname: x\n"))
    seed = tmp_path / "machines" / machine.id / "seed.iso"
    assert seed.stat().st_mode & 0o077 == 0
    assert seed.parent.stat().st_mode & 0o077 == 0
    iso = pycdlib.PyCdlib()
    iso.open(str(seed))
    try:
        assert iso.pvd.volume_identifier.decode().strip() == "cidata"
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/user-data")
        assert out.getvalue() == b"#cloud-config\nhostname: x\n"
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path="/meta-data")
        assert json.loads(out.getvalue()) == {"instance-id": machine.id, "local-hostname": "run-1"}
    finally:
        iso.close()


def test_qemu_gets_the_size_and_the_accelerator(cloud, tmp_path):
    machine = cloud.create_machine(_spec(cpu=2, ram_gb=0.5))
    (pid,) = qemu_pids(tmp_path / "machines" / machine.id)
    args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert args[args.index(b"-smp") + 1] == b"2"
    assert args[args.index(b"-m") + 1] == b"512"
    assert args[args.index(b"-accel") + 1] == b"tcg,thread=multi"


def test_create_is_idempotent_by_client_token(cloud):
    first = cloud.create_machine(_spec())
    again = cloud.create_machine(_spec())
    assert again.id == first.id
    assert again.ssh_port == first.ssh_port
    assert len(cloud.list_machines({RUN_TAG: "run-1"})) == 1


def test_machines_outlive_the_connector_and_are_found_by_tags(tmp_path, base_image):
    code = (
        "from slipway.connectors.local import connect\n"
        "from slipway.domain.machines import MachineSpec\n"
        f"c = connect('local', {{'data_dir': {str(tmp_path)!r}, 'accelerator': 'tcg'}})\n"
        "m = c.create_machine(MachineSpec('r', 'tiny', 'f', 1, 0.25, None, '#cloud-config\\n',"
        " tags={'slipway-run': 'run-9'}, client_token='t'))\n"
        "print(m.id)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    machine_id = result.stdout.strip()
    cloud = connect("local", {"data_dir": tmp_path, "accelerator": "tcg"})
    (found,) = cloud.list_machines({"slipway-run": "run-9"})
    assert found.id == machine_id
    assert found.state is MachineState.RUNNING
    cloud.delete_machine(found.id)
    assert qemu_pids(tmp_path / "machines" / machine_id) == []
    assert not (tmp_path / "machines" / machine_id).exists()


def test_delete_is_idempotent_and_leaves_no_process(cloud, tmp_path):
    machine = cloud.create_machine(_spec())
    folder = tmp_path / "machines" / machine.id
    assert len(qemu_pids(folder)) == 1
    cloud.delete_machine(machine.id)
    cloud.delete_machine(machine.id)
    assert qemu_pids(folder) == []
    with pytest.raises(NotFound):
        cloud.get_machine(machine.id)
    assert cloud.list_machines({}) == []


def test_a_qemu_that_ignores_quit_is_killed(cloud, tmp_path):
    machine = cloud.create_machine(_spec())
    folder = tmp_path / "machines" / machine.id
    (pid,) = qemu_pids(folder)
    os.kill(pid, 19)  # SIGSTOP: QMP will not answer
    cloud.delete_machine(machine.id)
    assert qemu_pids(folder) == []


def test_a_machine_whose_qemu_died_is_stopped_and_still_deletable(cloud, tmp_path):
    machine = cloud.create_machine(_spec())
    (pid,) = qemu_pids(tmp_path / "machines" / machine.id)
    os.kill(pid, 9)
    for _ in range(100):
        if cloud.get_machine(machine.id).state is MachineState.STOPPED:
            break
        time.sleep(0.05)
    seen = cloud.get_machine(machine.id)
    assert seen.state is MachineState.STOPPED
    assert seen.address is None
    assert "exited" in seen.cloud_message
    cloud.delete_machine(machine.id)


def test_other_local_clouds_machines_are_not_listed(tmp_path, base_image):
    a = connect("local-a", {"data_dir": tmp_path, "accelerator": "tcg"})
    b = connect("local-b", {"data_dir": tmp_path, "accelerator": "tcg"})
    machine = a.create_machine(_spec())
    try:
        assert b.list_machines({}) == []
        with pytest.raises(NotFound):
            b.get_machine(machine.id)
    finally:
        a.delete_machine(machine.id)


def test_missing_image_and_missing_group_are_the_clouds_errors(cloud, tmp_path):
    with pytest.raises(CloudError, match="image nope is not in the local image store"):
        cloud.create_machine(_spec(image_id="nope"))
    with pytest.raises(CloudError, match="security group web does not exist"):
        cloud.create_machine(_spec(security_groups=("web",)))
    assert list((tmp_path / "machines").iterdir()) == []


def test_upload_image_goes_to_the_image_store_then_boots(cloud, base_image):
    image = cloud.upload_image(base_image, "tiny-copy", {"distribution": "none"})
    assert image.id == "tiny-copy"
    (listed,) = cloud.images()
    assert listed.id == "tiny-copy"
    assert listed.properties["distribution"] == "none"
    assert len(listed.properties["sha512"]) == 128
    machine = cloud.create_machine(_spec(image_id=image.id))
    assert machine.state is MachineState.RUNNING
    with pytest.raises(Conflict, match="already stored"):
        cloud.upload_image(base_image, "tiny-copy", {})


def test_an_uploaded_qcow2_is_linked_into_the_store_not_copied(cloud, tmp_path):
    # A sync hands over its download from the cache in the same data folder.
    download = sector_image(BOOT_SECTOR, tmp_path / "sync-cache" / "download.qcow2")
    image = cloud.upload_image(download, "linked", {})
    assert (tmp_path / "images" / "linked.qcow2").stat().st_ino == download.stat().st_ino
    assert image.properties["sha512"] == hashlib.sha512(download.read_bytes()).hexdigest()


def test_flavors_fit_this_host(cloud):
    flavors = cloud.flavors()
    assert flavors[0].cpu == 1
    assert max(f.cpu for f in flavors) <= (os.cpu_count() or 1)


def test_a_create_interrupted_before_qemu_started_is_resumed(cloud, tmp_path):
    """A crash between writing the machine's record and starting QEMU leaves a
    pending machine; creating again with the same token starts it."""
    from slipway.connectors.local._layout import MachineFolder

    spec = _spec()
    folder = MachineFolder(tmp_path / "machines" / cloud._machine_id(spec))
    folder.root.mkdir(parents=True)
    cloud._prepare(folder, spec)  # what create does before launching QEMU
    (pending,) = cloud.list_machines({RUN_TAG: "run-1"})
    assert pending.state is MachineState.PENDING
    assert pending.address is None
    machine = cloud.create_machine(spec)
    assert machine.id == pending.id
    assert machine.state is MachineState.RUNNING
    assert len(qemu_pids(folder.root)) == 1


def test_concurrent_creates_with_one_token_start_one_machine(cloud, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        machines = list(pool.map(lambda _: cloud.create_machine(_spec()), range(4)))
    assert len({m.id for m in machines}) == 1
    assert len(qemu_pids(tmp_path / "machines" / machines[0].id)) == 1
