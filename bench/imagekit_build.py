"""Benchmark (b): `slipway image build` time and image size.

Baseline, measured in the same run: the bare mmdebstrap command of DESIGN.md
§8 (same package list, same dpkg excludes, no customisation). Then the
example recipe is built twice with Slipway: with an empty package cache and
with the cache the first build filled. Needs root, mmdebstrap, qemu-img,
sfdisk, mke2fs, grub-pc-bin and the network path to the Debian mirror.

    sudo .venv/bin/python bench/imagekit_build.py [--json]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slipway.imagekit.build import build_image
from slipway.imagekit.distribution import Distribution
from slipway.imagekit.recipe import load_recipe
from slipway.imagekit.rootfs import DPKG_EXCLUDES

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "examples" / "recipes" / "debian-12-minimal.yaml"
MIB = 1024 * 1024


def du_bytes(path: Path) -> int:
    out = subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def baseline(work: Path) -> dict[str, float]:
    traits = Distribution.DEBIAN.traits
    packages = [*traits.base_packages, traits.kernel_package]
    rootfs = work / "baseline-rootfs"
    argv = [
        "mmdebstrap",
        "--variant=minbase",
        "--mode=root",
        "--format=directory",
        "--include=" + ",".join(packages),
        *(f"--dpkgopt={o}" for o in DPKG_EXCLUDES),
        "bookworm",
        str(rootfs),
        traits.mirror,
    ]
    started = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    seconds = time.monotonic() - started
    size = du_bytes(rootfs)
    shutil.rmtree(rootfs)
    return {"seconds": seconds, "rootfs_bytes": size}


def slipway_build(work: Path, cache: Path, label: str) -> dict[str, float]:
    recipe = load_recipe(RECIPE)
    out = work / label
    started = time.monotonic()
    result = build_image(recipe, out, cache_dir=cache)
    seconds = time.monotonic() - started
    qcow2 = result.outputs["qcow2"]
    row = {
        "seconds": seconds,
        **{f"{k}_seconds": v for k, v in result.seconds.items()},
        "rootfs_bytes": result.rootfs_bytes,
        "qcow2_bytes": qcow2.stat().st_size,
        "packages": result.packages,
    }
    shutil.rmtree(out)
    return row


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    # Each Slipway build is compared with a baseline run just before it, so a
    # busy host slows both sides of a ratio alike.
    loads = [load()]
    with tempfile.TemporaryDirectory(prefix="bench-build-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        cache = work / "packages"
        base_cold = baseline(work)
        cold = slipway_build(work, cache, "cold")
        base_warm = baseline(work)
        warm = slipway_build(work, cache, "warm")
    loads.append(load())
    results = {
        "load_average_before_after": loads,
        "runs": [
            {"label": "cold package cache", "baseline": base_cold, "slipway": cold},
            {"label": "warm package cache", "baseline": base_warm, "slipway": warm},
        ],
    }
    if "--json" in sys.argv:
        print(json.dumps(results, indent=2))
        return
    print(f"load average before: {loads[0]}; after: {loads[1]}")
    print(
        "| build | baseline mmdebstrap s | slipway total s | vs baseline | bootstrap s | "
        "disk s | convert s | baseline rootfs MiB | slipway rootfs MiB | qcow2 MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, base, row in (
        ("cold package cache", base_cold, cold),
        ("warm package cache", base_warm, warm),
    ):
        print(
            f"| {label} | {base['seconds']:.1f} | {row['seconds']:.1f} | "
            f"{row['seconds'] / base['seconds']:.2f}x | {row['bootstrap_seconds']:.1f} | "
            f"{row['disk_seconds']:.1f} | {row['convert_seconds']:.1f} | "
            f"{base['rootfs_bytes'] / MIB:.0f} | {row['rootfs_bytes'] / MIB:.0f} | "
            f"{row['qcow2_bytes'] / MIB:.0f} |"
        )


if __name__ == "__main__":
    main()
