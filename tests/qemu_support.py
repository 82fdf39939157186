"""Finding the QEMU processes a test started, by a folder on their command line."""

from __future__ import annotations

from pathlib import Path


def qemu_pids(folder: Path) -> list[int]:
    """PIDs of the ``qemu-system`` processes whose command line names ``folder``."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"qemu-system" in cmdline and str(folder).encode() in cmdline:
                found.append(int(proc.name))
    return found


BOOT_MARKER = b"slipway-accel-ok"
# 16-bit real mode: ds=0; for each byte of the message: out 0x3f8; then cli; hlt.
_PRINT_AND_HALT = bytes.fromhex("31c08ed8fcbe177cbaf803ac84c07403eeebf8faf4ebfc")
BOOT_SECTOR = (_PRINT_AND_HALT + BOOT_MARKER + b"\r\n\0").ljust(510, b"\0") + b"\x55\xaa"
"""A guest that prints ``BOOT_MARKER`` from real mode and halts: it runs under
KVM even where Linux guests hang, so it must never pass the accelerator probe."""

SILENT_SECTOR = bytes.fromhex("faf4ebfd").ljust(510, b"\0") + b"\x55\xaa"
"""A guest that prints nothing and halts at once (cli; hlt; jmp back)."""


def sector_image(sector: bytes, target: Path) -> Path:
    """A 1 MiB qcow2 whose first sector is ``sector``, at ``target``."""
    import subprocess

    target.parent.mkdir(parents=True, exist_ok=True)
    raw = target.with_suffix(".raw")
    raw.write_bytes(sector.ljust(1024 * 1024, b"\0"))
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(target)], check=True)
    raw.unlink()
    return target
