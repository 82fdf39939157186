"""Benchmark (c): `slipway image compact` output size against `qemu-img
convert -c` (the baseline, measured in the same run) and `virt-sparsify
--compress`.

The input is the example image after use: 300 MiB of random data written to
its file system and deleted again, as package caches and logs are on a
machine that ran for a while. The example image is taken from the test cache
(built when missing, which needs root and mmdebstrap).

    .venv/bin/python bench/imagekit_compact.py [--json]

virt-sparsify runs with LIBGUESTFS_BACKEND=direct
LIBGUESTFS_BACKEND_SETTINGS=force_tcg (no usable KVM here); it is skipped,
with the reason, when it is not installed or fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.imagekit_support import cached_build  # noqa: E402

from slipway.imagekit.compact import compact  # noqa: E402
from slipway.imagekit.convert import convert, open_image  # noqa: E402
from slipway.imagekit.disk import PARTITION_OFFSET  # noqa: E402
from slipway.imagekit.recipe import DiskFormat  # noqa: E402

MIB = 1024 * 1024
JUNK_MIB = 300


def used_image(base: Path, work: Path) -> Path:
    raw = work / "used.raw"
    convert(open_image(base), raw, DiskFormat.RAW)
    junk = work / "junk"
    with junk.open("wb") as fh:
        for _ in range(JUNK_MIB):
            fh.write(os.urandom(MIB))
    fs = f"{raw}?offset={PARTITION_OFFSET}"
    subprocess.run(
        ["debugfs", "-w", fs, "-R", f"write {junk} /junk"], check=True, capture_output=True
    )
    subprocess.run(["debugfs", "-w", fs, "-R", "rm /junk"], check=True, capture_output=True)
    junk.unlink()
    return raw


@dataclass(frozen=True)
class Row:
    """One route's result: output bytes and seconds, or why it could not run."""

    label: str
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None


def timed(label: str, fn: Callable[[], Path]) -> Row:
    started = time.monotonic()
    try:
        out = fn()
    except Exception as exc:  # a tool that cannot run here is reported, not fatal
        return Row(label, error=str(exc)[-300:])
    return Row(label, out.stat().st_size, time.monotonic() - started)


def main() -> None:
    base = cached_build()
    with tempfile.TemporaryDirectory(prefix="bench-compact-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        raw = used_image(base, work)

        def qemu_img() -> Path:
            out = work / "qemu-img.qcow2"
            subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", raw, out], check=True)
            return out

        def slipway() -> Path:
            return compact(raw, work / "slipway.qcow2").target

        def sparsify() -> Path:
            if shutil.which("virt-sparsify") is None:
                raise RuntimeError("virt-sparsify is not installed (apt-get install guestfs-tools)")
            out = work / "virt-sparsify.qcow2"
            env = {
                **os.environ,
                "LIBGUESTFS_BACKEND": "direct",
                "LIBGUESTFS_BACKEND_SETTINGS": "force_tcg",
            }
            proc = subprocess.run(
                ["virt-sparsify", "--compress", "--convert", "qcow2", "--tmp", str(work), raw, out],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise RuntimeError(proc.stderr.strip() or proc.stdout.strip())
            return out

        rows = [
            timed("qemu-img convert -c (baseline)", qemu_img),
            timed("slipway image compact", slipway),
            timed("virt-sparsify --compress", sparsify),
        ]
        clean = base.stat().st_size
    if "--json" in sys.argv:
        print(json.dumps({"clean_image_bytes": clean, "rows": [asdict(r) for r in rows]}, indent=2))
        return
    base_row = rows[0]
    print(
        f"input: the example image ({clean / MIB:.0f} MiB as built) with {JUNK_MIB} MiB "
        "of deleted random data in its free space"
    )
    print("| route | output MiB | size vs baseline | seconds | time vs baseline |")
    print("|---|---|---|---|---|")
    for row in rows:
        if row.error:
            print(f"| {row.label} | - | - | - | could not run: {row.error} |")
            continue
        print(
            f"| {row.label} | {row.bytes / MIB:.1f} | {row.bytes / base_row.bytes:.2f}x | "
            f"{row.seconds:.1f} | {row.seconds / base_row.seconds:.2f}x |"
        )


if __name__ == "__main__":
    main()
