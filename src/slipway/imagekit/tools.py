"""Running the external tools the image kit wraps (qemu-img, mmdebstrap, sfdisk …).

Every failure becomes a :class:`ToolError` naming the tool and the tail of its
error output; a missing tool names the Debian package that provides it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from slipway.errors import ImageFileError, ToolError

__all__ = ["PACKAGES", "ImageInfo", "qemu_img_info", "require", "run", "run_reporting"]

# Tool -> the Debian package that ships it; this is also the list CI installs.
PACKAGES: dict[str, str] = {
    "qemu-img": "qemu-utils",
    "mmdebstrap": "mmdebstrap",
    "sfdisk": "fdisk",
    "mke2fs": "e2fsprogs",
    "e2fsck": "e2fsprogs",
    "debugfs": "e2fsprogs",
    "grub-mkimage": "grub-pc-bin",
    "qemu-system-x86_64": "qemu-system-x86",
}

_TAIL = 2000


def require(tool: str) -> str:
    """The absolute path of ``tool``, or a ToolError with the package to install."""
    found = shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")
    if found is None:
        package = PACKAGES.get(tool, tool)
        raise ToolError(tool, "not installed", hint=f"apt-get install {package}")
    return found


def run(
    args: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    cwd: Path | None = None,
    ok_codes: Sequence[int] = (0,),
) -> subprocess.CompletedProcess[bytes]:
    """Run a tool, capturing its output; raise ToolError on a non-zero exit."""
    argv = [str(a) for a in args]
    argv[0] = require(argv[0])
    full_env = {**os.environ, "LC_ALL": "C.UTF-8", **(env or {})}
    try:
        proc = subprocess.run(
            argv, input=input, capture_output=True, env=full_env, cwd=cwd, check=False
        )
    except OSError as exc:
        raise ToolError(Path(argv[0]).name, f"cannot start: {exc}") from exc
    if proc.returncode not in ok_codes:
        text = (proc.stderr or proc.stdout).decode(errors="replace").strip()
        raise ToolError(
            Path(argv[0]).name, f"exit status {proc.returncode}: {text[-_TAIL:] or 'no output'}"
        )
    return proc


def run_reporting(args: Sequence[str | Path], on_line: Callable[[str], None]) -> None:
    """Run a tool, handing each line it prints (stdout and stderr) to ``on_line``;
    raise ToolError with the last lines on a non-zero exit."""
    argv = [str(a) for a in args]
    argv[0] = require(argv[0])
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    tail: deque[str] = deque(maxlen=40)
    try:
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
    except OSError as exc:
        raise ToolError(Path(argv[0]).name, f"cannot start: {exc}") from exc
    assert proc.stdout is not None
    with proc.stdout:
        for raw in proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            tail.append(line)
            on_line(line)
    code = proc.wait()
    if code != 0:
        text = "\n".join(tail)
        raise ToolError(Path(argv[0]).name, f"exit status {code}: {text[-_TAIL:] or 'no output'}")


class ImageInfo(dict[str, Any]):
    """``qemu-img info --output=json`` as a dict, with typed shortcuts."""

    @property
    def format(self) -> str:
        return str(self["format"])

    @property
    def virtual_size(self) -> int:
        """Virtual disk size in bytes."""
        return int(self["virtual-size"])

    @property
    def actual_size(self) -> int:
        """Bytes the file occupies on the host's disk."""
        return int(self.get("actual-size", 0))


def qemu_img_info(path: Path, fmt: str | None = None) -> ImageInfo:
    """Describe a disk image; an unreadable file raises ImageFileError."""
    if not path.is_file():
        raise ImageFileError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: the file is empty")
    args: list[str | Path] = ["qemu-img", "info", "--output=json"]
    if fmt:
        args += ["-f", fmt]
    try:
        proc = run([*args, path])
    except ToolError as exc:
        raise ImageFileError(f"{path}: not a readable disk image ({exc.message})") from exc
    return ImageInfo(json.loads(proc.stdout))
