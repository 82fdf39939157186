"""The local cloud's accelerator with real QEMU: the probe never passes a guest
that is not Linux reaching user space, and a machine that hangs under KVM is
restarted under TCG — same machine, same run, an event saying why, nothing
left behind.

Whether KVM starts at all differs from host to host, so most tests use a
stand-in QEMU that takes ``-accel kvm -cpu host`` and runs the guest under
single-threaded TCG instead: a "KVM" machine that starts and whose guest
behaves as the test's disk makes it, on any host. Real machines run
multi-threaded TCG, so the command line tells the two apart.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition
from slipway.connectors.local import LocalConnector
from slipway.connectors.local._layout import MachineFolder
from slipway.connectors.local._watchdog import KvmWatch
from slipway.domain.machines import RUN_TAG, MachineSpec, MachineState
from slipway.domain.runs import RunState
from slipway.errors import ToolError
from slipway.services.ports import UnitOfWork
from tests.qemu_support import BOOT_SECTOR, SILENT_SECTOR, qemu_pids, sector_image
from tests.unit.test_runs import World

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None or shutil.which("qemu-img") is None,
    reason="needs qemu-system-x86 and qemu-utils",
)
needs_kvm_device = pytest.mark.skipif(
    not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="needs a /dev/kvm this user can open"
)
KVM_STAND_IN = "tcg,thread=single"
TCG = "-accel tcg,thread=multi"


@pytest.fixture
def kvm_stand_in(tmp_path: Path) -> str:
    script = tmp_path / "qemu-kvm-stand-in"
    script.write_text(
        "#!/bin/sh\n"
        'for a; do shift; case "$a" in\n'
        f'  kvm) set -- "$@" {KVM_STAND_IN};; host) set -- "$@" qemu64;;\n'
        '  *) set -- "$@" "$a";; esac; done\n'
        'exec qemu-system-x86_64 "$@"\n'
    )
    script.chmod(0o755)
    return str(script)


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@needs_kvm_device
def test_the_probe_does_not_pass_a_guest_that_halts_after_real_mode(
    tmp_path: Path, kvm_stand_in: str
) -> None:
    """The old probe's boot sector: it prints from real mode, never reaches Linux."""
    guest = sector_image(BOOT_SECTOR, tmp_path / "images" / "real-mode.qcow2")
    connector = LocalConnector("local", tmp_path, qemu=kvm_stand_in, probe_timeout=3)
    choice = connector.probe_accelerator(guest)
    assert choice.accelerator == "tcg"
    assert choice.reason.startswith("a Linux guest under KVM did not reach user space in 3 s")
    assert qemu_pids(tmp_path) == []
    assert not list(tmp_path.glob("probe-*"))  # its overlay and seed are gone
    cached = json.loads((tmp_path / "local-accelerator.json").read_text())
    assert (cached["accelerator"], cached["final"]) == ("tcg", True)


@needs_kvm_device
def test_the_real_probe_on_this_host_says_why(tmp_path: Path) -> None:
    guest = sector_image(BOOT_SECTOR, tmp_path / "images" / "real-mode.qcow2")
    choice = LocalConnector("local", tmp_path, probe_timeout=3).probe_accelerator(guest)
    assert choice.accelerator == "tcg"  # whatever KVM does here, this guest is no Linux
    assert choice.reason.startswith("a Linux guest under KVM ")
    assert qemu_pids(tmp_path) == []


_PROBER = """
import sys
from pathlib import Path
from slipway.connectors.local import LocalConnector
data, qemu, guest = sys.argv[1:]
LocalConnector("local", Path(data), qemu=qemu, probe_timeout=300).probe_accelerator(Path(guest))
"""


@needs_kvm_device
def test_a_probe_whose_prober_was_killed_is_stopped_by_the_next_machine(
    tmp_path: Path, kvm_stand_in: str
) -> None:
    """QEMU is daemonised: SIGKILL of the prober leaves the probe's guest running
    until another process of the local cloud sweeps it."""
    guest = sector_image(SILENT_SECTOR, tmp_path / "images" / "silent.qcow2")
    prober = subprocess.Popen(
        [sys.executable, "-c", _PROBER, str(tmp_path), kvm_stand_in, str(guest)]
    )
    try:
        deadline = time.monotonic() + 60
        while not any(qemu_pids(p) for p in tmp_path.glob("probe-*")):
            assert prober.poll() is None and time.monotonic() < deadline, "the probe never ran"
            time.sleep(0.1)
    finally:
        prober.kill()
        prober.wait()
    assert qemu_pids(tmp_path), "the probe's QEMU outlives its prober"

    cloud = LocalConnector("local", tmp_path, qemu=kvm_stand_in, accelerator="tcg")
    machine = cloud.create_machine(_spec("run-1"))
    assert not list(tmp_path.glob("probe-*"))
    assert qemu_pids(tmp_path) == qemu_pids(tmp_path / "machines" / machine.id)
    cloud.delete_machine(machine.id)
    assert qemu_pids(tmp_path) == []


def test_a_probe_under_way_in_another_process_is_left_alone(tmp_path: Path) -> None:
    probe = tmp_path / "probe-elsewhere"
    probe.mkdir()
    with (probe / "prober.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        LocalConnector("local", tmp_path, accelerator="tcg")._sweep_stale_probes()
        assert probe.is_dir()
    LocalConnector("local", tmp_path, accelerator="tcg")._sweep_stale_probes()
    assert not probe.exists()


def _spec(token: str) -> MachineSpec:
    return MachineSpec(
        name=token,
        image_id="silent",
        flavor="c1-m0.5",
        cpu=1,
        ram_gb=0.25,
        disk_gb=None,
        user_data="#cloud-config\n",
        tags={RUN_TAG: token},
        client_token=token,
    )


def test_a_machine_silent_under_kvm_is_restarted_under_tcg(
    tmp_path: Path, kvm_stand_in: str
) -> None:
    sector_image(SILENT_SECTOR, tmp_path / "images" / "silent.qcow2")
    cloud = LocalConnector(
        "local",
        tmp_path,
        qemu=kvm_stand_in,
        accelerator="kvm",
        kvm_watch=KvmWatch(first_output=2, stall=60),
    )
    machine = cloud.create_machine(_spec("run-1"))
    folder = MachineFolder(tmp_path / "machines" / machine.id)
    (pid,) = qemu_pids(folder.root)
    assert KVM_STAND_IN in _cmdline(pid)
    assert cloud.get_machine(machine.id).notices == ()  # within its bound: left alone

    time.sleep(2.5)
    restarted = cloud.get_machine(machine.id)
    assert restarted.id == machine.id
    assert restarted.state is MachineState.RUNNING
    (notice,) = restarted.notices
    assert "printed nothing on its serial console in 2 s" in notice
    assert "restarted it under TCG" in notice
    (new_pid,) = qemu_pids(folder.root)  # the KVM one is gone
    assert new_pid != pid and TCG in _cmdline(new_pid)
    assert (folder.root / "console-kvm.log").exists()
    # The host remembers: the next machine starts under TCG at once.
    assert cloud.accelerator_choice().accelerator == "tcg"  # type: ignore[union-attr]
    second = cloud.create_machine(_spec("run-2"))
    (second_pid,) = qemu_pids(tmp_path / "machines" / second.id)
    assert TCG in _cmdline(second_pid)

    for found in cloud.list_machines({}):
        cloud.delete_machine(found.id)
    assert qemu_pids(tmp_path) == []
    assert list((tmp_path / "machines").iterdir()) == []


def test_a_run_whose_machine_hangs_under_kvm_goes_on_under_tcg(
    memory_uow: Callable[[], UnitOfWork],
    examples: list[LoadedDefinition],
    tmp_path: Path,
    kvm_stand_in: str,
) -> None:
    world = World(memory_uow, examples, tmp_path)
    sector_image(SILENT_SECTOR, tmp_path / "images" / "debian-12-minimal.qcow2")
    world.cloud = LocalConnector(  # type: ignore[assignment]
        "local",
        tmp_path,
        qemu=kvm_stand_in,
        accelerator="kvm",
        kvm_watch=KvmWatch(first_output=2, stall=60),
    )
    world.prober.unreachable_polls = 1000  # the silent guest never answers SSH
    run_id = world.deploy()
    world.runner.advance(run_id)
    assert world.runs.get(run_id).state is RunState.BOOTING
    time.sleep(2.5)
    world.runner.advance(run_id)

    run = world.runs.get(run_id)
    assert run.state is RunState.BOOTING  # not failed: the same run goes on
    (pid,) = qemu_pids(tmp_path / "machines")
    assert TCG in _cmdline(pid)
    notes = [e.message for e in world.runs.events(run_id) if "under TCG" in e.message]
    assert len(notes) == 1 and "under KVM" in notes[0]
    world.runner.advance(run_id)  # a later look does not repeat the event
    assert len([e for e in world.runs.events(run_id) if "under TCG" in e.message]) == 1

    world.runs.terminate(run_id)
    world.drive(run_id)
    assert world.runs.get(run_id).state is RunState.CANCELLED
    assert qemu_pids(tmp_path) == []


def test_a_host_where_qemu_can_run_no_guest_is_refused_before_anything_is_created(
    tmp_path: Path,
) -> None:
    qemu = tmp_path / "qemu-without-tcg"
    qemu.write_text(
        "#!/bin/sh\n"
        'if [ "$1 $2" = "-accel help" ]; then\n'
        '  printf "Accelerators supported:\\nkvm\\n"; exit 0\n'
        "fi\n"
        'echo "qemu-without-tcg: failed to initialize kvm: Permission denied" >&2; exit 1\n'
    )
    qemu.chmod(0o755)
    sector_image(SILENT_SECTOR, tmp_path / "images" / "silent.qcow2")
    cloud = LocalConnector("local", tmp_path, qemu=str(qemu), probe_timeout=2)
    with pytest.raises(ToolError, match="can run no guest here") as refused:
        cloud.create_machine(_spec("run-1"))
    assert "apt-get install qemu-system-x86" in (refused.value.hint or "")
    assert not (tmp_path / "machines").exists() or not list((tmp_path / "machines").iterdir())
