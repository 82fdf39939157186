"""Where the local cloud keeps things under the data folder.

::

    <data_dir>/
      local-accelerator.json           the cached accelerator probe
      probe-<random>/                  a KVM probe under way (prober.lock held by its prober)
      images/<image id>.qcow2 (+ .json) the local image store (the image kit's)
      clouds/<cloud>/security-groups/<name>.json
      machines/<machine id>/
        machine.json                    cloud, name, image, size, tags, forwards
        security-groups.json            the rules the machine was created with
        disk.qcow2                      copy-on-write overlay on the base image
        seed.iso                        NoCloud seed (label cidata)
        qemu.pid  qmp.sock              the daemonised QEMU and its monitor
        console.log                     the serial console
        qemu.log                        QEMU's own messages
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MachineFolder", "write_json"]

# A unix socket path must fit in sun_path (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically: a reader sees the old file or the new one."""
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    partial.replace(path)


@dataclass(frozen=True)
class MachineFolder:
    root: Path

    @property
    def id(self) -> str:
        return self.root.name

    @property
    def record(self) -> Path:
        return self.root / "machine.json"

    @property
    def groups(self) -> Path:
        return self.root / "security-groups.json"

    @property
    def disk(self) -> Path:
        return self.root / "disk.qcow2"

    @property
    def seed(self) -> Path:
        return self.root / "seed.iso"

    @property
    def pidfile(self) -> Path:
        return self.root / "qemu.pid"

    @property
    def console(self) -> Path:
        return self.root / "console.log"

    @property
    def qemu_log(self) -> Path:
        return self.root / "qemu.log"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    @property
    def qmp(self) -> Path:
        """The QMP socket: in the folder, or under the runtime folder when the
        folder's path is too long for a unix socket."""
        inside = self.root / "qmp.sock"
        if len(str(inside)) <= _MAX_SOCKET_PATH:
            return inside
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        runtime = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/slipway-{os.getuid()}")
        return runtime / f"qmp-{digest}.sock"

    def read(self) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads(self.record.read_text())
        except (OSError, ValueError):
            return None
        return data
