"""``slipway image sanitise``: remove what ``check`` marks as removable, offline.

SSH host keys, shell histories, authorized_keys, cloud-init state
(/var/lib/cloud) and rotated logs are deleted; /etc/machine-id and current
logs are emptied (kept, with their mode and owner). The edits are made with
``debugfs -w`` on a copy, the blocks they free are zero-filled so the image
still compresses, the copy is checked with ``e2fsck -fn`` and then renamed
over the output: the output appears whole or not at all, and the input is
never written unless ``in_place`` (which also goes through a copy).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.errors import ImageFileError, InputError, ToolError
from slipway.imagekit.checks import layout, secrets, system
from slipway.imagekit.checks.rootfs import RootView
from slipway.imagekit.diskaccess import (
    expose,
    find_disk,
    image_facts,
    locate,
    run_tool,
    tool_path,
)
from slipway.imagekit.extfs import ExtFilesystem, is_safe, quote

__all__ = ["Change", "SanitiseResult", "sanitise_image"]

_ROTATED = (".gz", ".xz", ".bz2", ".zst", ".old")


@dataclass(frozen=True)
class Change:
    """One edit: ``action`` is ``removed`` or ``emptied``; ``rule`` the finding it fixes."""

    action: str
    path: str
    rule: str


@dataclass(frozen=True)
class SanitiseResult:
    input: str
    output: str
    changes: tuple[Change, ...]
    remaining: tuple[str, ...]  # removable rule ids the output still has (should be none)

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "removed": [{"action": c.action, "path": c.path, "rule": c.rule} for c in self.changes],
            "remaining": list(self.remaining),
        }


def sanitise_image(image: Path, out: Path | None, *, in_place: bool = False) -> SanitiseResult:
    """Write a sanitised copy of ``image`` to ``out`` (or replace ``image`` when in_place)."""
    from slipway.imagekit.check import check_image
    from slipway.imagekit.findings import RULES

    source = find_disk(locate(image))
    target = image if in_place else out
    if target is None:
        raise InputError("no output given", hint="pass -o OUT or --in-place")
    if not in_place and target.resolve() == image.resolve():
        raise InputError(f"{target} is the input", hint="use --in-place to change the input")
    info = image_facts(source)
    # qemu cannot write a streamOptimized VMDK (nor an OVA) in place: edit a qcow2
    # working copy, then write the same container again.
    repack = source.is_ova or (info.format == "vmdk" and info.subformat == "streamOptimized")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    work = tmp.with_name(tmp.name + ".qcow2") if repack else tmp
    try:
        if repack:
            run_tool(
                ["qemu-img", "convert", "-O", "qcow2", source.qemu_name(info.format), str(work)],
                timeout=3600,
            )
            changes = _edit(work, "qcow2")
            _repack(work, tmp, ova=source.is_ova, name=target.stem, capacity=info.virtual_size)
        else:
            run_tool(["cp", "--sparse=always", "--", str(image), str(tmp)], timeout=3600)
            changes = _edit(tmp, info.format)
        report = check_image(tmp)
        remaining = tuple(sorted(i for i in report.ids if RULES[i].removable))
        tmp.chmod(image.stat().st_mode & 0o7777)
        tmp.replace(target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if work != tmp:
            work.unlink(missing_ok=True)
    return SanitiseResult(str(image), str(target), tuple(changes), remaining)


def _repack(work: Path, tmp: Path, *, ova: bool, name: str, capacity: int) -> None:
    """Write the qcow2 ``work`` as a streamOptimized VMDK, packed in an OVA if ``ova``."""
    from slipway.imagekit.ova import write_ova

    vmdk = tmp.with_name(tmp.name + ".vmdk") if ova else tmp
    try:
        run_tool(
            [
                "qemu-img",
                "convert",
                "-f",
                "qcow2",
                "-O",
                "vmdk",
                "-o",
                "subformat=streamOptimized",
                str(work),
                str(vmdk),
            ],
            timeout=3600,
        )
        if ova:
            # The OVF descriptor is written afresh (name, disk, capacity).
            write_ova(vmdk, tmp, name=name, capacity=capacity)
    finally:
        if vmdk != tmp:
            vmdk.unlink(missing_ok=True)


def _edit(work: Path, fmt: str) -> list[Change]:
    info = image_facts(find_disk(locate(work)))
    with expose(locate(work), fmt, writable=True) as raw:
        slots = layout.find_slots(raw, info.virtual_size)
        root = next((s for s in slots if s.role == "root"), None)
        if root is None:
            raise ImageFileError(f"{work}: no ext root filesystem to sanitise")
        fs = ExtFilesystem(raw, root.partition.offset)
        sb = fs.superblock()
        view = RootView.load(fs, root.partition.number, sb.block_size)
        changes, commands = plan(view)
        if commands:
            touched = sorted({c.path for c in changes})
            blocks = fs.batch([f"blocks {quote(p)}" for p in touched])
            freed = {int(b) for out in blocks for b in out.split() if b.isdigit()}
            fs.batch(commands, writable=True)
            _zero_free(raw, root.partition.offset, fs, freed)
            _fsck(fs)
        if fmt == "raw":
            subprocess.run(["fallocate", "--dig-holes", str(raw)], check=False, capture_output=True)
    return changes


def plan(view: RootView) -> tuple[list[Change], list[str]]:
    """The changes to make and the debugfs commands that make them."""
    changes: list[Change] = []
    remove: list[str] = []
    empty: list[str] = []

    def rm(path: str, rule: str) -> None:
        # A name debugfs cannot take safely stays; the re-check then reports it.
        if is_safe(path):
            changes.append(Change("removed", path, rule))
            remove.append(path)

    def clear(path: str, rule: str) -> None:
        if is_safe(path):
            changes.append(Change("emptied", path, rule))
            empty.append(path)

    for path in secrets.host_keys(view):
        rm(path, "ssh.host-keys")
        if view.exists(path + ".pub"):
            rm(path + ".pub", "ssh.host-keys")
    for entry in view.named({"authorized_keys", "authorized_keys2"}):
        if entry.is_file:
            rm(entry.path, "ssh.authorized-keys")
    for entry in view.named(secrets.HISTORY_NAMES):
        if entry.is_file and not entry.path.startswith("/usr/"):
            rm(entry.path, "secrets.shell-history")
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        machine_id = view.file(path)
        if machine_id is not None and machine_id.size > 0:
            clear(path, "identity.machine-id")
    state = sorted(view.under("/var/lib/cloud"), key=lambda e: e.path.count("/"), reverse=True)
    for entry in state:
        if not entry.is_dir:
            rm(entry.path, "cloudinit.state")
    for path in system.log_files(view):
        if path.endswith(_ROTATED) or path.rsplit(".", 1)[-1].isdigit():
            rm(path, "logs.present")
        else:
            clear(path, "logs.present")
    commands = [f"rm {quote(p)}" for p in remove]
    commands += [f"rmdir {quote(e.path)}" for e in state if e.is_dir and is_safe(e.path)]
    for path in empty:
        entry = view.entries[path]
        commands += [
            f"rm {quote(path)}",
            f"write /dev/null {quote(path)}",
            f"sif {quote(path)} mode 0{entry.mode:o}",
            f"sif {quote(path)} uid {entry.uid}",
            f"sif {quote(path)} gid {entry.gid}",
        ]
    return changes, commands


def _zero_free(raw: Path, offset: int, fs: ExtFilesystem, blocks: set[int]) -> None:
    """Write zeros over ``blocks`` that are free now (the data of what was removed)."""
    sb = fs.superblock()
    free = [b for b in sorted(blocks) if any(lo <= b <= hi for lo, hi in sb.free_ranges)]
    zeros = bytes(sb.block_size)
    with raw.open("r+b") as fh:
        for block in free:
            fh.seek(offset + block * sb.block_size)
            fh.write(zeros)
        fh.flush()
        os.fsync(fh.fileno())


def _fsck(fs: ExtFilesystem) -> None:
    proc = subprocess.run(
        [tool_path("e2fsck"), "-fn", fs.spec], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise ToolError(
            "e2fsck", f"the edited filesystem is inconsistent: {proc.stdout.strip()[-300:]}"
        )
