"""compact: free space that held data becomes zeros, files stay as they were."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from slipway.imagekit.compact import compact, partitions
from slipway.imagekit.convert import convert, open_image
from slipway.imagekit.disk import PARTITION_OFFSET
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.tools import run


def dirty_copy(small_disk: Path, folder: Path) -> Path:
    """A copy whose free blocks hold random bytes of a deleted 16 MiB file."""
    raw = folder / "dirty.raw"
    shutil.copy(small_disk, raw)
    junk = folder / "junk"
    junk.write_bytes(os.urandom(16 * 1024 * 1024))
    fs = f"{raw}?offset={PARTITION_OFFSET}"
    run(["debugfs", "-w", fs, "-R", f"write {junk} /junk"])
    run(["debugfs", "-w", fs, "-R", "rm /junk"])
    return raw


def cat(raw: Path, path: str) -> bytes:
    return run(["debugfs", f"{raw}?offset={PARTITION_OFFSET}", "-R", f"cat {path}"]).stdout


def test_compact_zeroes_deleted_data_and_beats_plain_compression(
    small_disk: Path, tmp_path: Path
) -> None:
    raw = dirty_copy(small_disk, tmp_path)
    plain = tmp_path / "plain.qcow2"
    convert(open_image(raw), plain, DiskFormat.QCOW2)
    result = compact(raw, tmp_path / "compact.qcow2")
    assert result.file_systems == 1
    assert result.target_bytes < plain.stat().st_size - 15 * 1024 * 1024
    back = tmp_path / "back.raw"
    convert(open_image(result.target), back, DiskFormat.RAW)
    assert cat(back, "/data.bin") == cat(small_disk, "/data.bin")
    assert run(["e2fsck", "-fn", f"{back}?offset={PARTITION_OFFSET}"]).returncode == 0


def test_compact_never_changes_its_input(small_disk: Path, tmp_path: Path) -> None:
    raw = dirty_copy(small_disk, tmp_path)
    before = raw.read_bytes()
    compact(raw, tmp_path / "out.qcow2")
    assert raw.read_bytes() == before


def test_compact_keeps_the_boot_code_and_the_partition_table(
    small_disk: Path, tmp_path: Path
) -> None:
    result = compact(small_disk, tmp_path / "out.raw", DiskFormat.RAW)
    head = small_disk.read_bytes()[:PARTITION_OFFSET]
    assert result.target.read_bytes()[:PARTITION_OFFSET] == head
    assert partitions(result.target) == partitions(small_disk)


def test_free_space_is_zeroed_even_when_e2fsck_must_first_change_the_file_system(
    tmp_path: Path,
) -> None:
    # mke2fs -d leaves a big directory unindexed: e2fsck -fy rewrites it, and
    # e2fsck only discards on a file system it did not have to change.
    tree = tmp_path / "tree" / "many"
    tree.mkdir(parents=True)
    for i in range(3000):
        (tree / f"file-with-a-long-name-{i}").touch()
    raw = tmp_path / "fs.raw"
    with raw.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)
    run(["mke2fs", "-q", "-F", "-t", "ext4", "-b", "4096", "-d", tree.parent, raw])
    junk = tmp_path / "junk"
    junk.write_bytes(os.urandom(16 * 1024 * 1024))
    run(["debugfs", "-w", raw, "-R", f"write {junk} /junk"])
    run(["debugfs", "-w", raw, "-R", "rm /junk"])
    result = compact(raw, tmp_path / "out.raw", DiskFormat.RAW)
    allocated = result.target.stat().st_blocks * 512
    assert allocated < 8 * 1024 * 1024, allocated
