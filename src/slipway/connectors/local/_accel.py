"""Choose QEMU's accelerator by trying a real Linux guest (DESIGN.md §7).

``/dev/kvm`` existing proves nothing, and neither does a boot sector that
prints under KVM: on some hosts real-mode code runs while a Linux guest hangs
silently until QEMU reports ``internal-error``. So the probe boots a Linux
image of the local image store with exactly the arguments real machines get
(the connector builds them) and passes only when the guest's own lines — its
kernel reaching user space — appear on the serial console within
``PROBE_TIMEOUT`` seconds. The answer and its reason are cached in the data
folder, keyed by the QEMU binary and its version. When the store holds no
image yet, TCG is used and the question stays open until one is there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "PROBE_TIMEOUT",
    "AcceleratorChoice",
    "ProbeOutcome",
    "accelerator_args",
    "available_accelerators",
    "choose_accelerator",
    "reached_user_space",
    "read_choice",
    "remember_accelerator",
]

PROBE_TIMEOUT = 20.0
"""Seconds a Linux guest has under KVM to reach user space; a working KVM
needs two or three, including the boot loader's one-second menu."""

# Lines only a Linux guest prints once its kernel has handed over to user
# space: the kernel's own "Run /init as init process" (initramfs or root fs),
# and systemd's greeting. Real-mode code or a boot loader cannot print these
# by accident of the probe.
_USER_SPACE = re.compile(rb"Run /\S*init as init process|systemd\[1\]: |Welcome to .*!")


def reached_user_space(console: bytes) -> bool:
    """True when ``console`` (a serial log) shows a Linux guest in user space."""
    return _USER_SPACE.search(console) is not None


@dataclass(frozen=True)
class AcceleratorChoice:
    """The accelerator for this host and why, in words for ``clouds list``."""

    accelerator: str  # "kvm" | "tcg"
    reason: str
    final: bool = True  # False: made without a guest to probe; ask again later

    def describe(self) -> str:
        return f"{self.accelerator}: {self.reason}"


@dataclass(frozen=True)
class ProbeOutcome:
    passed: bool
    detail: str  # what the guest did, e.g. "reached user space in 2.4 s"


Probe = Callable[[float], ProbeOutcome]
"""Boots a Linux guest under KVM for at most the given seconds."""


def _qemu_version(binary: str) -> str:
    try:
        result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    except OSError:
        return ""
    return result.stdout.splitlines()[0] if result.stdout else ""


def available_accelerators(binary: str) -> set[str]:
    """The accelerators ``binary`` was built with (``-accel help``); empty
    when it cannot be run."""
    try:
        listed = subprocess.run([binary, "-accel", "help"], capture_output=True, text=True,
                                timeout=10, check=False).stdout  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return set()
    return set(re.findall(r"^\s*(\w+)\s*$", listed, re.MULTILINE)) - {"Accelerators"}


def read_choice(binary: str, cache: Path) -> AcceleratorChoice | None:
    """The cached choice for ``binary`` (at its current version), if any."""
    try:
        cached = json.loads(cache.read_text())
        if cached.get("binary") != binary or cached.get("version") != _qemu_version(binary):
            return None
        return AcceleratorChoice(
            str(cached["accelerator"]), str(cached.get("reason", "")), bool(cached.get("final"))
        )
    except (OSError, ValueError, KeyError, AttributeError):
        return None


def choose_accelerator(
    binary: str,
    cache: Path,
    probe: Probe | None,
    *,
    timeout: float = PROBE_TIMEOUT,
    kvm_device: str = "/dev/kvm",
    fresh: bool = False,
) -> AcceleratorChoice:
    """KVM if a Linux guest really boots under it (``probe``), else TCG.

    ``probe`` is ``None`` when there is no Linux image to try: TCG then, and
    the choice is not final, so the next call with a probe asks again.
    ``fresh``: ask again even when an answer is cached."""
    cached = None if fresh else read_choice(binary, cache)
    if cached is not None and (cached.final or probe is None):
        return cached
    if not os.access(kvm_device, os.R_OK | os.W_OK):
        choice = AcceleratorChoice("tcg", f"{kvm_device} is missing or not usable")
    elif probe is None:
        choice = AcceleratorChoice(
            "tcg",
            "no Linux image in the local image store to try KVM with yet",
            final=False,
        )
    else:
        outcome = probe(timeout)
        if outcome.passed:
            choice = AcceleratorChoice("kvm", f"a Linux guest under KVM {outcome.detail}")
        else:
            choice = AcceleratorChoice(
                "tcg", f"a Linux guest under KVM {outcome.detail}; using software emulation"
            )
    remember_accelerator(binary, cache, choice)
    return choice


def remember_accelerator(binary: str, cache: Path, choice: AcceleratorChoice) -> None:
    """Record ``choice`` as the answer for ``binary`` in ``cache`` (atomically)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    record = {"binary": binary, "version": _qemu_version(binary), "probed": time.time()}
    partial = cache.with_name(cache.name + ".part")
    partial.write_text(json.dumps({**record, **asdict(choice)}) + "\n")
    partial.replace(cache)


def accelerator_args(accel: str) -> list[str]:
    """QEMU arguments for ``accel``: multi-threaded TCG, or KVM with the host CPU."""
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi"]
