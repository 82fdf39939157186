"""The image commands end to end on the built example image: a conversion
round trip through every format, compaction, and the local store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

CLI = "from slipway.entrypoints.cli.app import main; main()"


def slipway(data_dir: Path, *args: str | Path) -> Any:
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(data_dir)}
    proc = subprocess.run(
        [sys.executable, "-c", CLI, *map(str, args), "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def same_content(a: Path, b: Path) -> bool:
    proc = subprocess.run(["qemu-img", "compare", a, b], capture_output=True, check=False)
    return proc.returncode == 0


def test_qcow2_raw_vmdk_ova_qcow2_keeps_identical_content(
    built_image: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    chain = ["raw", "vmdk", "ova", "qcow2"]
    current = built_image
    for i, fmt in enumerate(chain):
        target = tmp_path / f"step{i}.{fmt}"
        out = slipway(data, "image", "convert", current, target, "--to", fmt)
        assert out["format"] == fmt and out["virtual_size"] == 2 * 1024**3
        current = target
    assert same_content(built_image, current)
    assert same_content(built_image, tmp_path / "step0.raw")


def test_compact_of_a_clean_build_stays_as_small_and_keeps_the_files(
    built_image: Path, tmp_path: Path
) -> None:
    out = slipway(tmp_path / "data", "image", "compact", built_image, tmp_path / "c.qcow2")
    assert out["file_systems"] == 1
    assert out["target_bytes"] <= out["source_bytes"] * 1.02
    # e2fsck stamps the superblock, so compare what a user sees: boot code,
    # partition table and files, and a file system that checks clean.
    before, after = tmp_path / "before.raw", tmp_path / "after.raw"
    for src, dst in ((built_image, before), (tmp_path / "c.qcow2", after)):
        subprocess.run(["qemu-img", "convert", "-O", "raw", src, dst], check=True)
    with before.open("rb") as a, after.open("rb") as b:
        assert a.read(1024**2) == b.read(1024**2)
    for path in ("/usr/lib/os-release", "/boot/grub/grub.cfg", "/etc/nftables.conf", "/etc/passwd"):
        assert debugfs_cat(before, path) == debugfs_cat(after, path), path
    fsck = subprocess.run(
        ["e2fsck", "-fn", f"{after}?offset={1024**2}"], capture_output=True, check=False
    )
    assert fsck.returncode == 0, fsck.stdout


def debugfs_cat(raw: Path, path: str) -> bytes:
    proc = subprocess.run(
        ["debugfs", f"{raw}?offset={1024**2}", "-R", f"cat {path}"], capture_output=True, check=True
    )
    assert proc.stdout, path
    return proc.stdout


def test_import_list_rm_through_the_command_line(built_image: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    entry = slipway(
        data,
        "image",
        "import",
        built_image,
        "--name",
        "debian-12-minimal",
        "--os",
        "debian 12 amd64",
    )
    assert entry["id"] == "debian-12-minimal"
    assert entry["os"] == {"distribution": "debian", "version": "12", "arch": "amd64"}
    assert entry["file_size"] == built_image.stat().st_size
    assert [e["name"] for e in slipway(data, "image", "list")] == ["debian-12-minimal"]
    assert slipway(data, "image", "rm", "debian-12-minimal") == {"removed": "debian-12-minimal"}
    assert slipway(data, "image", "list") == []
