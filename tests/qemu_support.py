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
