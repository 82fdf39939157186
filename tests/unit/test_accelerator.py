"""Choosing the local cloud's accelerator, and the KVM watchdog's verdicts,
with stand-in probes and console texts (the real QEMU side is in
tests/integration/test_local_accelerator.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from slipway.connectors.local._accel import (
    ProbeOutcome,
    choose_accelerator,
    reached_user_space,
    read_choice,
)
from slipway.connectors.local._watchdog import KvmWatch, settled
from slipway.domain.machines import MachineState

QEMU = "no-such-qemu"  # its version reads as "": the cache key still works
USABLE = "/dev/null"  # a device this user can open


class Probe:
    def __init__(self, outcome: ProbeOutcome) -> None:
        self.outcome = outcome
        self.calls = 0

    def __call__(self, timeout: float) -> ProbeOutcome:
        self.calls += 1
        return self.outcome


def test_without_a_kvm_device_tcg_is_chosen_without_probing(tmp_path: Path) -> None:
    probe = Probe(ProbeOutcome(True, "reached user space in 1.0 s"))
    choice = choose_accelerator(QEMU, tmp_path / "a.json", probe, kvm_device="/nonexistent")
    assert (choice.accelerator, probe.calls) == ("tcg", 0)
    assert "/nonexistent" in choice.reason


def test_kvm_is_chosen_only_when_the_guest_reaches_user_space(tmp_path: Path) -> None:
    passing = Probe(ProbeOutcome(True, "reached user space in 2.4 s"))
    choice = choose_accelerator(QEMU, tmp_path / "a.json", passing, kvm_device=USABLE)
    assert choice.accelerator == "kvm"
    assert choice.describe() == "kvm: a Linux guest under KVM reached user space in 2.4 s"

    failing = Probe(ProbeOutcome(False, "printed nothing on its console in 20 s"))
    choice = choose_accelerator(QEMU, tmp_path / "b.json", failing, kvm_device=USABLE)
    assert choice.accelerator == "tcg"
    assert "printed nothing" in choice.reason


def test_the_answer_is_cached_and_not_probed_again(tmp_path: Path) -> None:
    cache = tmp_path / "a.json"
    probe = Probe(ProbeOutcome(False, "did not reach user space in 20 s"))
    choose_accelerator(QEMU, cache, probe, kvm_device=USABLE)
    again = choose_accelerator(QEMU, cache, probe, kvm_device=USABLE)
    assert (again.accelerator, probe.calls) == ("tcg", 1)
    assert read_choice(QEMU, cache) == again
    assert read_choice("another-qemu", cache) is None  # keyed by the binary


def test_without_a_guest_tcg_is_used_until_one_can_be_probed(tmp_path: Path) -> None:
    cache = tmp_path / "a.json"
    first = choose_accelerator(QEMU, cache, None, kvm_device=USABLE)
    assert (first.accelerator, first.final) == ("tcg", False)
    assert "no Linux image" in first.reason
    probe = Probe(ProbeOutcome(True, "reached user space in 2.0 s"))
    second = choose_accelerator(QEMU, cache, probe, kvm_device=USABLE)
    assert (second.accelerator, probe.calls) == ("kvm", 1)


@pytest.mark.parametrize(
    ("console", "expected"),
    [
        (b"", False),
        (b"slipway-accel-ok\r\n", False),  # real mode, then halt
        (b"[    0.000000] Linux version 6.1.0-28-cloud-amd64\r\n", False),  # kernel only
        (b"[    1.234567] Run /init as init process\r\n", True),
        (b"[    3.1] systemd[1]: Hostname set to <debian>.\r\n", True),
        (b"\r\nWelcome to Debian GNU/Linux 12 (bookworm)!\r\n", True),
    ],
)
def test_user_space_is_recognised_on_the_console(console: bytes, expected: bool) -> None:
    assert reached_user_space(console) is expected


def test_a_guest_has_settled_at_its_login_prompt_or_when_cloud_init_is_done() -> None:
    assert settled(b"\r\nDebian GNU/Linux 12 slipway-r1 ttyS0\r\n\r\nslipway-r1 login: ")
    assert settled(b"Cloud-init v. 22.4.2 finished at Sun, 29 Nov 2026 05:00:00 +0000.")
    assert not settled(b"[  OK  ] Started ssh.service - OpenBSD Secure Shell server.\r\n")


def _trouble(watch: KvmWatch, **kw: object) -> str | None:
    values: dict[str, object] = {
        "console_bytes": 0,
        "last_output": None,
        "launched": 1000.0,
        "now": 1010.0,
    }
    values.update(kw)
    state = values.pop("state", MachineState.RUNNING)
    return watch.trouble(state, "QEMU reports internal-error", **values)  # type: ignore[arg-type]


def test_the_watchdog_lets_a_guest_within_its_bounds_be() -> None:
    watch = KvmWatch(first_output=30, stall=180)
    assert _trouble(watch) is None
    assert _trouble(watch, console_bytes=500, last_output=1100.0, now=1200.0) is None


def test_the_watchdog_acts_on_silence_a_stalled_console_and_a_broken_qemu() -> None:
    watch = KvmWatch(first_output=30, stall=180)
    silent = _trouble(watch, now=1031.0)
    assert silent is not None and "printed nothing" in silent
    stalled = _trouble(watch, console_bytes=500, last_output=1005.0, now=1186.0)
    assert stalled is not None and "no progress for 180 s" in stalled
    broken = _trouble(watch, state=MachineState.ERROR)
    assert broken is not None and "internal-error" in broken
