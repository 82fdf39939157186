"""``slipway image compact``: zero free space, sparsify, compress.

The image is expanded to a sparse raw working copy; every ext2/3/4 file
system on it gets ``e2fsck -fy`` then ``e2fsck -fy -E discard`` addressed as
``'disk.raw?offset=N'`` — e2fsprogs' unix I/O manager turns discard into hole
punching on a regular file, so free blocks become holes (zeros) without a
loop device. Space after the last partition is punched too. The result is
converted to the target format, compressed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from slipway.errors import ImageFileError, ToolError
from slipway.imagekit.convert import SourceImage, convert, open_image, qemu_convert
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.tools import run

__all__ = ["CompactResult", "Partition", "compact", "partitions", "zero_free_space"]

_EXT_MAGIC_OFFSET = 1080
_EXT_MAGIC = b"\x53\xef"
_FALLOC_PUNCH = 0x02 | 0x01  # FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE


@dataclass(frozen=True)
class Partition:
    """A partition of a raw disk: byte offset and size, and whether it holds ext2/3/4."""

    number: int
    offset: int
    size: int
    ext: bool


@dataclass(frozen=True)
class CompactResult:
    """Sizes in bytes of the input and output files, and what was zeroed."""

    source: Path
    target: Path
    format: str
    source_bytes: int
    target_bytes: int
    file_systems: int


def partitions(raw: Path) -> list[Partition]:
    """Partitions of a raw disk (MBR or GPT); a bare file system counts as one."""
    proc = run(["sfdisk", "--json", raw], ok_codes=range(256))
    found: list[Partition] = []
    if proc.returncode == 0 and proc.stdout.strip():
        table = json.loads(proc.stdout)["partitiontable"]
        sector = int(table.get("sectorsize", 512))
        for i, part in enumerate(table.get("partitions", []), start=1):
            offset, size = int(part["start"]) * sector, int(part["size"]) * sector
            found.append(Partition(i, offset, size, _is_ext(raw, offset)))
    elif _is_ext(raw, 0):
        found.append(Partition(0, 0, raw.stat().st_size, True))
    return found


def _is_ext(raw: Path, offset: int) -> bool:
    with raw.open("rb") as fh:
        fh.seek(offset + _EXT_MAGIC_OFFSET)
        return fh.read(2) == _EXT_MAGIC


def _punch(raw: Path, start: int, end: int) -> None:
    """Deallocate bytes [start, end) of ``raw`` so they read as zeros."""
    if end <= start:
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(raw, os.O_RDWR)
    try:
        rc = libc.fallocate(fd, _FALLOC_PUNCH, ctypes.c_long(start), ctypes.c_long(end - start))
        if rc != 0:  # a file system without hole punching: write zeros instead
            os.lseek(fd, start, os.SEEK_SET)
            chunk = b"\0" * (1 << 20)
            left = end - start
            while left > 0:
                left -= os.write(fd, chunk[: min(left, len(chunk))])
    finally:
        os.close(fd)


def zero_free_space(raw: Path) -> int:
    """Turn free space of a raw disk into holes; return how many file systems were handled."""
    parts = partitions(raw)
    handled = 0
    for part in parts:
        if not part.ext:
            continue
        target = f"{raw}?offset={part.offset}" if part.offset else str(raw)
        # e2fsck discards only on a file system it did not have to change, so a
        # first pass repairs (and optimises directories), a second one discards.
        for extra in ([], ["-E", "discard"]):
            proc = run(["e2fsck", "-f", "-y", *extra, target], ok_codes=range(256))
            # 0: clean, 1: errors fixed; anything higher means the file system is damaged.
            if proc.returncode not in (0, 1):
                text = proc.stdout.decode(errors="replace").strip().splitlines()
                raise ImageFileError(
                    f"partition {part.number}: e2fsck could not repair the file system "
                    f"(exit {proc.returncode}): {text[-1] if text else ''}"
                )
        handled += 1
    if parts:
        _punch(raw, max(p.offset + p.size for p in parts), raw.stat().st_size)
    return handled


def compact(
    source: Path, target: Path, fmt: DiskFormat = DiskFormat.QCOW2, *, work_dir: Path | None = None
) -> CompactResult:
    """Write a compacted copy of ``source`` as ``fmt`` to ``target`` (never edits ``source``)."""
    image: SourceImage = open_image(source)
    with tempfile.TemporaryDirectory(prefix=".compact-", dir=work_dir or target.parent) as tmp:
        raw = Path(tmp) / "disk.raw"
        try:
            qemu_convert(image, raw, DiskFormat.RAW)
        except ToolError as exc:
            raise ImageFileError(f"{source}: cannot read the image: {exc.message}") from exc
        handled = zero_free_space(raw)
        convert(raw, target, fmt, name=target.stem)
    return CompactResult(
        source=source,
        target=target,
        format=fmt.value,
        source_bytes=source.stat().st_size,
        target_bytes=target.stat().st_size,
        file_systems=handled,
    )
