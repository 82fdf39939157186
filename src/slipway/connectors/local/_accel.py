"""Choose QEMU's accelerator by trying (DESIGN.md §7).

``/dev/kvm`` existing proves nothing: on some hosts a KVM guest hangs. The
probe boots a 512-byte boot sector that writes a line to the first serial
port and halts; KVM is chosen only if that line appears. The answer is cached
in the data folder, keyed by the QEMU binary and its version, so the probe
(at most ``PROBE_TIMEOUT`` seconds) runs once per host.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

__all__ = ["PROBE_TIMEOUT", "accelerator_args", "choose_accelerator"]

PROBE_TIMEOUT = 8.0  # seconds; a working KVM prints in well under one
_MARKER = b"slipway-accel-ok"

# 16-bit real mode: ds=0; for each byte of the message: out 0x3f8; then cli; hlt.
_CODE = bytes.fromhex("31c08ed8fcbe177cbaf803ac84c07403eeebf8faf4ebfc")
_BOOT_SECTOR = (_CODE + _MARKER + b"\r\n\0").ljust(510, b"\0") + b"\x55\xaa"


def _qemu_version(binary: str) -> str:
    result = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return result.stdout.splitlines()[0] if result.stdout else ""


def _boots(binary: str, accel: str, timeout: float) -> bool:
    with tempfile.TemporaryDirectory(prefix="slipway-accel-") as tmp:
        disk = Path(tmp) / "boot.img"
        disk.write_bytes(_BOOT_SECTOR)
        serial = Path(tmp) / "serial.log"
        # The same accelerator arguments as real machines (KVM with -cpu host):
        # a probe that passes where real guests fail would be worse than none.
        command = [
            binary, *accelerator_args(accel), "-display", "none", "-nodefaults",
            "-no-user-config",
            "-m", "16", "-serial", f"file:{serial}",
            "-drive", f"file={disk},format=raw,if=floppy",
        ]  # fmt: skip
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if serial.exists() and _MARKER in serial.read_bytes():
                    return True
                if process.poll() is not None:
                    return False
                time.sleep(0.05)
            return False
        finally:
            process.kill()
            process.wait()


def choose_accelerator(
    binary: str, cache: Path, *, timeout: float = PROBE_TIMEOUT, kvm_device: str = "/dev/kvm"
) -> str:
    """``"kvm"`` if a guest really boots with KVM, else ``"tcg"``; cached in ``cache``."""
    version = _qemu_version(binary)
    try:
        cached = json.loads(cache.read_text())
        if cached.get("binary") == binary and cached.get("version") == version:
            return str(cached["accelerator"])
    except (OSError, ValueError, KeyError):
        pass
    kvm_usable = os.access(kvm_device, os.R_OK | os.W_OK)
    accel = "kvm" if kvm_usable and _boots(binary, "kvm", timeout) else "tcg"
    remember_accelerator(binary, cache, accel)
    return accel


def remember_accelerator(binary: str, cache: Path, accel: str) -> None:
    """Record ``accel`` as the answer for ``binary`` in ``cache``."""
    version = _qemu_version(binary)
    cache.parent.mkdir(parents=True, exist_ok=True)
    record = {"binary": binary, "version": version, "accelerator": accel, "probed": time.time()}
    partial = cache.with_suffix(".part")
    partial.write_text(json.dumps(record) + "\n")
    partial.replace(cache)


def accelerator_args(accel: str) -> list[str]:
    """QEMU arguments for ``accel``: multi-threaded TCG, or KVM with the host CPU."""
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    return ["-accel", "tcg,thread=multi"]
