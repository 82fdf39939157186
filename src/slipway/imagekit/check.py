"""``slipway image check``: an image against the guidelines of DESIGN.md §8.

The image is never booted and never changed: qemu-img reads its format and
allocation, the disk is exposed read-only as raw bytes (disk.py), the
partition table is read here, and the root filesystem through e2fsprogs.
Every problem, including an image that cannot be read at all, is a finding;
only a path that is not a readable file raises (ImageFileError).
"""

from __future__ import annotations

import time
from pathlib import Path

from slipway.errors import ImageFileError
from slipway.imagekit.checks import layout, network, secrets, system
from slipway.imagekit.checks.layout import Slot
from slipway.imagekit.checks.rootfs import CONFIG_FILES, RootView
from slipway.imagekit.diskaccess import ImageFacts, expose, find_disk, image_facts, locate
from slipway.imagekit.extfs import ExtFilesystem
from slipway.imagekit.findings import CheckReport, Finding, Severity
from slipway.imagekit.partitions import Content

__all__ = ["CheckReport", "Finding", "Severity", "check_image"]


def check_image(path: Path) -> CheckReport:
    """Check the image at ``path`` (qcow2, raw, VMDK or OVA) and report every finding.

    Raises ImageFileError only when ``path`` is not a readable file, and
    ToolError when a required tool (qemu-img, e2fsprogs) is missing.
    """
    started = time.monotonic()
    source = locate(path)
    info: ImageFacts | None = None
    slots: list[Slot] = []
    findings: list[Finding] = []
    try:
        source = find_disk(source)
        info = image_facts(source)
        findings.extend(layout.check_format(path, info))
        if info.virtual_size == 0:
            findings.append(_unreadable(path, "the disk is empty (0 bytes)"))
        else:
            with expose(source, info.format, virtual_size=info.virtual_size) as raw:
                slots = layout.find_slots(raw, info.virtual_size)
                findings.extend(_inspect(path, raw, slots, info))
    except ImageFileError as exc:
        findings.append(_unreadable(path, exc.message))
    except OSError as exc:  # a FUSE read of a damaged image fails with EIO
        findings.append(
            Finding("image.corrupt", f"reading the disk failed: {exc}", {"path": str(path)})
        )
    return CheckReport(
        path=str(path),
        format=info.format if info else None,
        virtual_size=info.virtual_size if info else None,
        actual_size=info.actual_size if info else None,
        partitions=tuple(s.to_dict() for s in slots),
        findings=tuple(findings),
        seconds=time.monotonic() - started,
    )


def _unreadable(path: Path, why: str) -> Finding:
    return Finding("image.unreadable", why, {"path": str(path)})


def _inspect(path: Path, raw: Path, slots: list[Slot], info: ImageFacts) -> list[Finding]:
    findings = layout.classify(slots)
    root = next((s for s in slots if s.role == "root"), None)
    if root is None:
        if all(s.content in (Content.ZERO, Content.UNKNOWN) for s in slots) and not any(
            s.partition.kind for s in slots
        ):
            return [
                _unreadable(
                    path, "no partition table and no filesystem (not a disk image, or damaged)"
                )
            ]
        other = [
            s
            for s in slots
            if s.content in (Content.XFS, Content.BTRFS, Content.VFAT, Content.UNKNOWN)
        ]
        if other:
            kinds = ", ".join(f"partition {s.partition.number}: {s.content}" for s in other)
            return [
                *findings,
                Finding(
                    "image.filesystem-unsupported", kinds, {"path": str(path), "partitions": kinds}
                ),
            ]
        if not any(f.rule_id == "image.encrypted" or f.rule_id == "layout.lvm" for f in findings):
            findings.append(
                Finding(
                    "image.no-root-filesystem", "no ext partition holds /etc", {"path": str(path)}
                )
            )
        return findings
    fs = ExtFilesystem(raw, root.partition.offset)
    fsck = fs.start_fsck()
    try:
        sb = fs.superblock()
        view = RootView.load(fs, root.partition.number, sb.block_size)
        findings.extend(layout.check_free_space(raw, root, sb, info))
        findings.extend(inspect_root(view))
    finally:
        out, _ = fsck.communicate(timeout=600)
    if fsck.returncode not in (0, None):
        lines = [ln for ln in out.splitlines() if ln and not ln.startswith(("e2fsck ", "Pass "))]
        findings.append(
            Finding(
                "image.filesystem-errors",
                "; ".join(lines[:3])[:300],
                {"partition": root.partition.number, "exit_status": fsck.returncode},
            )
        )
    return findings


def inspect_root(view: RootView) -> list[Finding]:
    """Every check of an installed system on its root filesystem."""
    view.prefetch(
        [
            *CONFIG_FILES,
            *secrets.key_candidates(view),
            *(e.path for e in view.glob("/etc/cloud/cloud.cfg.d/*.cfg")),
            *(e.path for e in view.glob("/etc/ssh/sshd_config.d/*")),
        ]
    )
    findings: list[Finding] = []
    findings.extend(system.check_boot_config(view))
    findings.extend(secrets.check_accounts(view))
    findings.extend(secrets.check_secrets(view))
    findings.extend(system.check_cloud_init(view))
    findings.extend(network.check_sshd(view))
    findings.extend(network.check_firewall(view))
    findings.extend(network.check_services(view))
    findings.extend(system.check_state(view))
    swap_files = {str(f.evidence.get("path")) for f in findings if f.rule_id == "layout.swap-file"}
    findings.extend(system.check_large_files(view, swap_files))
    return findings
