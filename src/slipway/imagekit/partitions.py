"""Partition tables (MBR, GPT) and what a partition holds, read from raw bytes.

Read from the raw view of :func:`slipway.imagekit.diskaccess.expose`; nothing here
runs a tool. Offsets and sizes are in bytes.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import BinaryIO

__all__ = ["Content", "Partition", "probe", "read_partitions"]

SECTOR = 512

# MBR partition types that matter here.
_MBR_EXTENDED = {0x05, 0x0F, 0x85}
_MBR_KIND = {0x82: "swap", 0x8E: "lvm", 0xEF: "esp", 0xEE: "gpt-protective"}
# GPT partition type GUIDs (as text, lower case).
_GPT_KIND = {
    "0657fd6d-a4ab-43c4-84e5-0933c84b4f4f": "swap",
    "e6d6d379-f507-44c2-a23c-238f2a3df928": "lvm",
    "c12a7328-f81f-11d2-ba4b-00a0c93ec93b": "esp",
    "21686148-6449-6e6f-744e-656564454649": "bios-boot",
    "bc13c2ff-59e6-4262-a352-b275fd6f7172": "xbootldr",
    "a19d880f-05fc-4d3b-a006-743f0f84911e": "raid",
    "ca7d7ccb-63ed-4c53-861c-1742536059cc": "luks",
}


class Content(StrEnum):
    """What the first bytes of a partition (or a whole disk) say it holds."""

    EXT = "ext"
    XFS = "xfs"
    BTRFS = "btrfs"
    VFAT = "vfat"
    SWAP = "swap"
    LVM = "lvm"
    LUKS = "luks"
    ZERO = "zero"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Partition:
    """One partition: 1-based number as Linux names it, byte range, table type."""

    number: int
    offset: int
    size: int
    type: str
    kind: str | None = None  # swap, lvm, esp, bios-boot … from the type code

    def to_dict(self) -> dict[str, object]:
        return {
            "number": self.number,
            "offset": self.offset,
            "size": self.size,
            "type": self.type,
            "kind": self.kind,
        }


def _read(fh: BinaryIO, offset: int, length: int) -> bytes:
    fh.seek(offset)
    return fh.read(length)


def read_partitions(fh: BinaryIO, disk_size: int) -> tuple[str, list[Partition]]:
    """The table type (``gpt``, ``mbr`` or ``none``) and its partitions, in table order."""
    mbr = _read(fh, 0, SECTOR)
    if len(mbr) < SECTOR or mbr[510:512] != b"\x55\xaa":
        return "none", []
    entries = [struct.unpack_from("<B3xB3xII", mbr, 446 + 16 * i) for i in range(4)]
    if any(ptype == 0xEE for _, ptype, _, _ in entries):
        gpt = _read_gpt(fh, disk_size)
        if gpt is not None:
            return "gpt", gpt
    # A FAT or NTFS boot sector also ends in 55 AA; a table's status bytes are 0 or 0x80.
    if any(status not in (0, 0x80) for status, _, _, _ in entries):
        return "none", []
    parts: list[Partition] = []
    for index, (_, ptype, lba, count) in enumerate(entries, start=1):
        if ptype == 0 or count == 0:
            continue
        if ptype in _MBR_EXTENDED:
            parts.extend(_read_logical(fh, lba, disk_size))
            continue
        parts.append(
            Partition(index, lba * SECTOR, count * SECTOR, f"0x{ptype:02x}", _MBR_KIND.get(ptype))
        )
    return "mbr", parts


def _read_logical(fh: BinaryIO, ext_lba: int, disk_size: int) -> list[Partition]:
    parts: list[Partition] = []
    ebr_lba, number = ext_lba, 5
    seen: set[int] = set()
    while ebr_lba not in seen and ebr_lba * SECTOR < disk_size and number < 64:
        seen.add(ebr_lba)
        ebr = _read(fh, ebr_lba * SECTOR, SECTOR)
        if len(ebr) < SECTOR or ebr[510:512] != b"\x55\xaa":
            break
        _, ptype, lba, count = struct.unpack_from("<B3xB3xII", ebr, 446)
        if ptype and count:
            parts.append(
                Partition(
                    number,
                    (ebr_lba + lba) * SECTOR,
                    count * SECTOR,
                    f"0x{ptype:02x}",
                    _MBR_KIND.get(ptype),
                )
            )
            number += 1
        _, ntype, nlba, _ = struct.unpack_from("<B3xB3xII", ebr, 462)
        if ntype not in _MBR_EXTENDED or nlba == 0:
            break
        ebr_lba = ext_lba + nlba
    return parts


def _read_gpt(fh: BinaryIO, disk_size: int) -> list[Partition] | None:
    header = _read(fh, SECTOR, 92)
    if len(header) < 92 or header[:8] != b"EFI PART":
        return None
    entries_lba, count, entry_size = struct.unpack_from("<QII", header, 72)
    if not 128 <= entry_size <= 4096 or count > 1024:
        return None
    table = _read(fh, entries_lba * SECTOR, count * entry_size)
    parts: list[Partition] = []
    for index in range(len(table) // entry_size):
        entry = table[index * entry_size : (index + 1) * entry_size]
        type_guid = str(uuid.UUID(bytes_le=entry[:16]))
        if type_guid == "00000000-0000-0000-0000-000000000000":
            continue
        first, last = struct.unpack_from("<QQ", entry, 32)
        if last < first or first * SECTOR >= disk_size:
            continue
        parts.append(
            Partition(
                index + 1,
                first * SECTOR,
                (last - first + 1) * SECTOR,
                type_guid,
                _GPT_KIND.get(type_guid),
            )
        )
    return parts


def probe(fh: BinaryIO, offset: int, size: int) -> Content:
    """What the partition at ``offset`` holds, from its signatures."""
    head = _read(fh, offset, 68 * 1024)
    if len(head) < 2048:
        return Content.UNKNOWN if head.strip(b"\0") else Content.ZERO
    if head[:6] == b"LUKS\xba\xbe" or head[:6] == b"SKUL\xba\xbe":
        return Content.LUKS
    if head[1024 + 56 : 1024 + 58] == b"\x53\xef":
        return Content.EXT
    if head[:4] == b"XFSB":
        return Content.XFS
    if len(head) >= 0x10048 and head[0x10040:0x10048] == b"_BHRfS_M":
        return Content.BTRFS
    for sector in range(4):  # LVM's label sits in one of the first four sectors
        if (
            head[sector * SECTOR : sector * SECTOR + 8] == b"LABELONE"
            and head[sector * SECTOR + 24 : sector * SECTOR + 32] == b"LVM2 001"
        ):
            return Content.LVM
    for page in (4096, 8192, 16384, 65536):
        if head[page - 10 : page] in (b"SWAPSPACE2", b"SWAP-SPACE"):
            return Content.SWAP
    if head[82:87] == b"FAT32" or head[54:59] in (b"FAT12", b"FAT16"):
        return Content.VFAT
    if not head[: 64 * 1024].strip(b"\0"):
        return Content.ZERO
    return Content.UNKNOWN
