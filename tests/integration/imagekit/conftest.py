"""A small bootable-shaped disk (one ext4 partition, GRUB in the MBR) made in
a second from a tiny tree: enough for conversions, compaction and the store
without building a whole distribution."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slipway.imagekit.disk import DiskLayout, write_disk

TOOLS = ("qemu-img", "sfdisk", "mke2fs", "e2fsck", "debugfs", "grub-mkimage")


def missing_tool() -> str | None:
    for tool in TOOLS:
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            return tool
    return None


@pytest.fixture(scope="session")
def small_disk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64 MiB raw disk: MBR, one ext4 partition with a few files. Read-only."""
    tool = missing_tool()
    if tool is not None:
        pytest.skip(f"{tool} is not installed")
    base = tmp_path_factory.mktemp("small-disk")
    tree = base / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc/os-release").write_text('ID=debian\nVERSION_ID="12"\n')
    (tree / "data.bin").write_bytes(bytes(range(256)) * 4096)
    raw = base / "small.raw"
    write_disk(tree, raw, DiskLayout.new(64 * 1024 * 1024))
    return raw
