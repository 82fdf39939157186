"""The image as a file and a disk: format, compression, space, partitions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from slipway.imagekit.diskaccess import ImageFacts
from slipway.imagekit.extfs import ExtFilesystem, Superblock
from slipway.imagekit.findings import Finding
from slipway.imagekit.partitions import Content, Partition, probe, read_partitions

__all__ = [
    "LARGE_VIRTUAL",
    "Slot",
    "check_format",
    "check_free_space",
    "classify",
    "find_slots",
]

LARGE_VIRTUAL = 20 * 1024**3  # bytes
_BOOT_NAMES = ("vmlinuz", "initrd.img", "grub", "config-", "System.map")
_NOT_ZEROED_MIN = 1024**2  # bytes of non-zero free blocks worth a warning
_ALLOCATED_ZEROS_MIN = 32 * 1024**2  # bytes of allocated zeros worth a warning


@dataclass(frozen=True)
class Slot:
    """A partition (or the whole disk, number 0) and what it holds."""

    partition: Partition
    content: Content
    role: str | None = None  # root, boot, or None

    def to_dict(self) -> dict[str, object]:
        return {**self.partition.to_dict(), "content": str(self.content), "role": self.role}


def check_format(path: Path, info: ImageFacts) -> list[Finding]:
    evidence = {
        "path": str(path),
        "format": info.format,
        "virtual_size": info.virtual_size,
        "actual_size": info.actual_size,
    }
    findings: list[Finding] = []
    if info.corrupt or info.check_errors:
        findings.append(
            Finding(
                "image.corrupt",
                f"qemu-img check: {info.check_errors} errors"
                f"{', marked corrupt' if info.corrupt else ''}",
                evidence,
            )
        )
    if info.format == "raw":
        findings.append(Finding("format.raw", f"raw image of {info.virtual_size} bytes", evidence))
    elif info.compressible and not info.compressed_clusters:
        findings.append(
            Finding(
                "format.not-compressed",
                f"{info.format} image without compressed clusters ({info.actual_size} bytes)",
                evidence,
            )
        )
    if info.virtual_size > LARGE_VIRTUAL:
        findings.append(
            Finding(
                "space.virtual-size-large",
                f"virtual size {info.virtual_size / 1024**3:.1f} GiB",
                evidence,
            )
        )
    return findings


def classify(slots: Sequence[Slot]) -> list[Finding]:
    """Layout findings; each extra partition is reported once, by its most specific rule."""
    findings: list[Finding] = []
    for slot in slots:
        part = slot.partition
        evidence = {
            "partition": part.number,
            "offset": part.offset,
            "size": part.size,
            "type": part.type,
        }
        if slot.content is Content.LUKS or part.kind == "luks":
            findings.append(
                Finding("image.encrypted", f"partition {part.number} is LUKS", evidence)
            )
        elif slot.content is Content.SWAP or part.kind == "swap":
            findings.append(
                Finding("layout.swap-partition", f"partition {part.number} is swap", evidence)
            )
        elif slot.content is Content.LVM or part.kind == "lvm":
            findings.append(
                Finding(
                    "layout.lvm", f"partition {part.number} is an LVM physical volume", evidence
                )
            )
        elif slot.role == "boot":
            findings.append(
                Finding("layout.separate-boot", f"partition {part.number} holds /boot", evidence)
            )
        elif slot.role == "root" or part.kind in ("esp", "bios-boot"):
            continue
        else:
            findings.append(
                Finding(
                    "layout.multiple-partitions",
                    f"partition {part.number} ({slot.content}) besides the root partition",
                    evidence,
                )
            )
    return findings


def check_free_space(raw: Path, slot: Slot, sb: Superblock, info: ImageFacts) -> list[Finding]:
    """Free blocks that hold data (not zero-filled) or that are allocated zeros.

    Only free blocks the image file actually stores are read (intersecting the
    block bitmap with ``qemu-img map``), so a sparse, clean image costs nothing.
    """
    base = slot.partition.offset
    bs = sb.block_size
    free = [(base + lo * bs, base + (hi + 1) * bs) for lo, hi in sb.free_ranges]
    stored = [(start, start + length) for start, length in info.extents]
    nonzero = zero = 0
    with raw.open("rb") as fh:
        for lo, hi in _intersect(free, stored):
            nz, z = _scan(fh, lo, hi, bs)
            nonzero += nz
            zero += z
    evidence = {"partition": slot.partition.number, "block_size": bs}
    findings: list[Finding] = []
    if nonzero >= _NOT_ZEROED_MIN:
        findings.append(
            Finding(
                "space.free-not-zeroed",
                f"{nonzero} bytes of free blocks hold data",
                {**evidence, "size": nonzero},
            )
        )
    wasted = zero + info.allocated_zero
    if wasted >= _ALLOCATED_ZEROS_MIN:
        findings.append(
            Finding(
                "space.allocated-zeros",
                f"{wasted} bytes are stored but hold only zeros",
                {**evidence, "size": wasted},
            )
        )
    return findings


def _intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlaps of two sorted lists of half-open byte ranges."""
    out: list[tuple[int, int]] = []
    i = j = 0
    a, b = sorted(a), sorted(b)
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _scan(fh: BinaryIO, lo: int, hi: int, block: int) -> tuple[int, int]:
    """Bytes of non-zero and of zero blocks in [lo, hi)."""
    nonzero = zero = 0
    chunk = max(block, (4 * 1024**2 // block) * block)
    zeros = bytes(block)
    fh.seek(lo)
    pos = lo
    while pos < hi:
        data = fh.read(min(chunk, hi - pos))
        if not data:
            break
        if data.count(0) == len(data):
            zero += len(data)
        else:
            for k in range(0, len(data), block):
                piece = data[k : k + block]
                if piece == zeros[: len(piece)]:
                    zero += len(piece)
                else:
                    nonzero += len(piece)
        pos += len(data)
    return nonzero, zero


def root_filesystem(raw: Path, slots: Sequence[Slot]) -> tuple[Slot, ExtFilesystem] | None:
    for slot in slots:
        if slot.role == "root":
            return slot, ExtFilesystem(raw, slot.partition.offset)
    return None


def find_slots(raw: Path, disk_size: int) -> list[Slot]:
    """Every partition (or the whole disk, number 0), what it holds and its role."""
    with raw.open("rb") as fh:
        table, parts = read_partitions(fh, disk_size)
        if table == "none":
            parts = [Partition(0, 0, disk_size, "none")]
        slots = [Slot(p, probe(fh, p.offset, p.size)) for p in parts]
    ext = [s for s in slots if s.content is Content.EXT]
    tops = [ExtFilesystem(raw, s.partition.offset).batch(["ls -p /"])[0] for s in ext]
    roles: dict[int, str] = {}
    for slot, top in zip(ext, tops, strict=True):
        names = {line.split("/")[5] for line in top.splitlines() if line.count("/") >= 6}
        if "etc" in names and "root" not in roles.values():
            roles[slot.partition.number] = "root"
        elif any(n.startswith(_BOOT_NAMES) for n in names):
            roles[slot.partition.number] = "boot"
    return [Slot(s.partition, s.content, roles.get(s.partition.number)) for s in slots]
