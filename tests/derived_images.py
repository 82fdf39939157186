"""Broken images derived from the built example image, without booting it.

A qcow2 overlay on the (read-only, cached) built image is opened writable
through the image kit's FUSE export; ``debugfs -w`` edits its root file
system like ``image sanitise`` does; the overlay is then flattened into a
self-contained qcow2 (``image test`` refuses images that name a backing file).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from slipway.imagekit.checks.layout import find_slots
from slipway.imagekit.diskaccess import ImageSource, expose, image_facts, locate
from slipway.imagekit.extfs import ExtFilesystem

__all__ = ["BREAKAGES", "derive"]

BREAKAGES: dict[str, list[str]] = {
    # No sshd at all: the binary, the unit's enablement and its alias are gone.
    "no-sshd": [
        "rm /usr/sbin/sshd",
        "rm /etc/systemd/system/multi-user.target.wants/ssh.service",
        "rm /etc/systemd/system/sshd.service",
    ],
    # cloud-init's own switch: its generator then leaves every stage out of the boot.
    "no-cloud-init": [
        "write /dev/null /etc/cloud/cloud-init.disabled",
        "sif /etc/cloud/cloud-init.disabled mode 0100644",
    ],
}


def derive(built: Path, target: Path, breakage: str) -> Path:
    """Write ``target``: ``built`` with the debugfs edits of ``BREAKAGES[breakage]``."""
    overlay = target.with_name(target.stem + ".overlay.qcow2")
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", built.resolve(), "-F", "qcow2", overlay],
        check=True,
    )
    try:
        virtual = image_facts(locate(built)).virtual_size
        with expose(ImageSource(overlay), "qcow2", writable=True) as raw:
            root = next(s for s in find_slots(raw, virtual) if s.role == "root")
            fs = ExtFilesystem(raw, root.partition.offset)
            outputs = fs.batch(BREAKAGES[breakage], writable=True)
            problems = [o for o in outputs if o.strip() and not o.startswith("Allocated inode")]
            assert not problems, problems
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", overlay, target], check=True)
    finally:
        overlay.unlink(missing_ok=True)
    return target
