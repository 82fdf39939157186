"""Turning a root file system tree into a bootable raw disk, without loop
devices or device-mapper: a sparse file, an MBR with one partition (sfdisk on
the file), ext4 written by ``mke2fs -d`` at the partition's offset, and GRUB
for BIOS placed by hand (boot.img in the MBR, core.img in the gap after it).

Free space is never written, so it stays a hole: zero-filled by construction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from slipway.errors import ToolError
from slipway.imagekit.tools import run

__all__ = ["GRUB_MODULES", "PARTITION_OFFSET", "DiskLayout", "grub_config", "write_disk"]

MIB = 1024 * 1024
PARTITION_OFFSET = MIB  # bytes; the gap before it holds GRUB's core.img
BLOCK_SIZE = 4096
GRUB_DIR = Path("/usr/lib/grub/i386-pc")
# Built into core.img, so GRUB needs nothing from /boot/grub/i386-pc at boot.
GRUB_MODULES = (
    "biosdisk",
    "part_msdos",
    "ext2",
    "normal",
    "linux",
    "gzio",
    "search",
    "search_fs_uuid",
    "configfile",
    "echo",
    "test",
    "boot",
)
_MBR_CODE = 440  # bytes of boot code before the disk signature and partition table


@dataclass(frozen=True)
class DiskLayout:
    """Where the root file system sits: sizes and offsets in bytes."""

    disk_bytes: int
    fs_uuid: str
    offset: int = PARTITION_OFFSET

    @property
    def blocks(self) -> int:
        """Number of 4 KiB blocks of the root file system."""
        return (self.disk_bytes - self.offset) // BLOCK_SIZE

    @classmethod
    def new(cls, disk_bytes: int) -> DiskLayout:
        return cls(disk_bytes=disk_bytes, fs_uuid=str(uuid.uuid4()))


def grub_config(layout: DiskLayout, cmdline: str = "", *, timeout: int = 1) -> str:
    """The grub.cfg that boots the kernel symlinks at the root of the file system;
    ``timeout`` is the seconds its menu waits."""
    args = f"root=UUID={layout.fs_uuid} ro console=tty0 console=ttyS0,115200 {cmdline}".strip()
    return (
        f"set timeout={timeout}\n"
        "set default=0\n"
        f"search --no-floppy --fs-uuid --set=root {layout.fs_uuid}\n"
        "menuentry 'Linux' {\n"
        f"  linux /vmlinuz {args}\n"
        "  initrd /initrd.img\n"
        "}\n"
    )


def write_disk(rootfs: Path, target: Path, layout: DiskLayout) -> None:
    """Write a bootable raw disk image of ``rootfs`` to ``target`` (sparse)."""
    with target.open("wb") as fh:
        fh.truncate(layout.disk_bytes)
    start = layout.offset // 512
    run(
        ["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", target],
        input=f"label: dos\nstart={start}, type=83, bootable\n".encode(),
    )
    run(
        [
            "mke2fs",
            "-q",
            "-F",
            "-t",
            "ext4",
            "-b",
            str(BLOCK_SIZE),
            "-L",
            "root",
            "-U",
            layout.fs_uuid,
            "-E",
            f"offset={layout.offset}",
            "-d",
            rootfs,
            target,
            str(layout.blocks),
        ]
    )
    # mke2fs -d leaves large directories unindexed; let e2fsck index them now so
    # the first boot's fsck, and compaction later, find nothing to change.
    run(["e2fsck", "-f", "-y", "-D", f"{target}?offset={layout.offset}"], ok_codes=(0, 1))
    _install_grub(target, layout)


def _install_grub(target: Path, layout: DiskLayout) -> None:
    core = target.with_name(target.name + ".core.img")
    try:
        run(
            [
                "grub-mkimage",
                "-O",
                "i386-pc",
                "-o",
                core,
                "-p",
                "(hd0,msdos1)/boot/grub",
                *GRUB_MODULES,
            ]
        )
        core_bytes = core.read_bytes()
    finally:
        core.unlink(missing_ok=True)
    if 512 + len(core_bytes) > layout.offset:
        raise ToolError(
            "grub-mkimage", f"core image of {len(core_bytes)} bytes does not fit the MBR gap"
        )
    boot = (GRUB_DIR / "boot.img").read_bytes()
    with target.open("r+b") as fh:
        fh.seek(0)
        fh.write(boot[:_MBR_CODE])
        fh.seek(512)
        fh.write(core_bytes)
