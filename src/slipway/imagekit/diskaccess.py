"""Reading disk images without booting them: qemu-img facts and a raw view.

An :class:`ImageSource` names where the disk is: a qcow2, raw or VMDK file, or
the VMDK inside an OVA, read in place (tar members are contiguous, so the
disk is the byte range ``offset``…``offset+size`` of the tar). :func:`expose`
yields a path that reads as the raw virtual disk: the file itself for a plain
raw image, else a read-only FUSE export of ``qemu-storage-daemon``. It always
cleans up: the FUSE mount is removed before the daemon stops (or a stale mount
stays behind), then the temporary directory.

Backing files are never followed: an image that names one is refused, because
a crafted image could point at any file of the checking machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slipway.errors import ImageFileError, ToolError

__all__ = [
    "ImageFacts",
    "ImageSource",
    "expose",
    "find_disk",
    "image_facts",
    "locate",
    "run_tool",
    "tool_path",
]

FUSE_DEVICE = Path("/dev/fuse")  # without it, exports fall back to a converted copy
_DISK_SUFFIXES = (".vmdk", ".qcow2", ".img", ".raw")
_TIMEOUT = 120.0  # seconds; qemu-img map of a large compressed image stays far below


def run_tool(args: Sequence[str], *, timeout: float = _TIMEOUT, check: bool = True) -> str:
    """Run an external tool; return its stdout. A missing tool or failure is a ToolError."""
    try:
        proc = subprocess.run(
            [tool_path(args[0]), *args[1:]],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            errors="replace",
        )
    except FileNotFoundError as exc:
        raise ToolError(args[0], "not installed", hint=_install_hint(args[0])) from exc
    except subprocess.TimeoutExpired as exc:
        raise ToolError(args[0], f"took longer than {timeout:.0f} s") from exc
    if check and proc.returncode != 0:
        raise ToolError(
            args[0], (proc.stderr or proc.stdout).strip()[-500:] or f"exit status {proc.returncode}"
        )
    return proc.stdout


def tool_path(tool: str) -> str:
    """Where ``tool`` is; e2fsprogs live in /usr/sbin, which a user's PATH often lacks."""
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin") or tool


def _install_hint(tool: str) -> str:
    package = {
        "qemu-img": "qemu-utils",
        "qemu-storage-daemon": "qemu-system-common",
        "debugfs": "e2fsprogs",
        "e2fsck": "e2fsprogs",
        "zerofree": "zerofree",
    }.get(tool, tool)
    return f"install the Debian package {package}"


@dataclass(frozen=True)
class ImageSource:
    """Where a disk is: ``path``, and for an OVA the disk member's byte range."""

    path: Path
    member: str | None = None
    offset: int = 0
    size: int | None = None

    @property
    def is_ova(self) -> bool:
        return self.member is not None

    def file_node(self) -> dict[str, Any]:
        """The qemu block node that reads the disk's bytes (a slice of the tar for OVA)."""
        node: dict[str, Any] = {"driver": "file", "filename": str(self.path)}
        if self.is_ova:
            node = {"driver": "raw", "offset": self.offset, "size": self.size, "file": node}
        return node

    def qemu_name(self, fmt: str | None = None) -> str:
        """A name qemu-img accepts: the plain path, or a ``json:`` name for an OVA member.

        Without ``fmt`` qemu probes the format (for a plain file, and for the
        member of an OVA, whose ``json:`` name then leaves ``driver`` out).
        """
        if not self.is_ova and fmt is None:
            return str(self.path)
        spec: dict[str, Any] = {"file": self.file_node()}
        if fmt is not None:
            spec["driver"] = fmt
        return "json:" + json.dumps(spec)


def locate(path: Path) -> ImageSource:
    """``path`` as an image source; raises ImageFileError when it is no readable file."""
    if not path.exists():
        raise ImageFileError(f"{path}: no such file")
    if not path.is_file():
        raise ImageFileError(f"{path}: not a regular file")
    if not os.access(path, os.R_OK):
        raise ImageFileError(f"{path}: not readable", hint="run as a user who can read it")
    return ImageSource(path)


def find_disk(source: ImageSource) -> ImageSource:
    """The disk itself: for an OVA (a tar), its disk member; raises ImageFileError."""
    with source.path.open("rb") as fh:
        head = fh.read(512)
    if len(head) == 512 and head[257:262] == b"ustar":
        return _ova_disk(source.path)
    return source


def _ova_disk(path: Path) -> ImageSource:
    try:
        with tarfile.open(path, "r:") as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
    except (tarfile.TarError, EOFError) as exc:
        raise ImageFileError(f"{path}: damaged OVA (tar): {exc}") from exc
    disks = [m for m in members if m.name.lower().endswith(_DISK_SUFFIXES)]
    if not disks:
        names = ", ".join(m.name for m in members) or "nothing"
        raise ImageFileError(f"{path}: OVA holds no disk (it holds {names})")
    disk = max(disks, key=lambda m: m.size)  # the system disk is the big one
    if disk.offset_data + disk.size > path.stat().st_size:
        raise ImageFileError(f"{path}: OVA is truncated inside {disk.name}")
    return ImageSource(path, member=disk.name, offset=disk.offset_data, size=disk.size)


@dataclass(frozen=True)
class ImageFacts:
    """What qemu-img says about an image. Sizes in bytes."""

    format: str
    virtual_size: int
    actual_size: int
    subformat: str | None = None
    compression: str | None = None
    compressed_clusters: int | None = None
    check_errors: int = 0
    corrupt: bool = False
    backing: str | None = None
    allocated: int = 0
    allocated_zero: int = 0
    extents: tuple[tuple[int, int], ...] = ()

    @property
    def compressible(self) -> bool:
        return self.format == "qcow2" or (
            self.format == "vmdk" and self.subformat != "streamOptimized"
        )


def image_facts(source: ImageSource) -> ImageFacts:
    """Format, sizes, compression and allocated extents (``qemu-img info/check/map``)."""
    try:
        info = json.loads(run_tool(["qemu-img", "info", "--output=json", source.qemu_name()]))
    except ToolError as exc:
        raise ImageFileError(f"{source.path}: {exc.message}") from exc
    fmt = str(info.get("format", "raw"))
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise ImageFileError(
            f"{source.path}: names a backing file ({info.get('backing-filename')})",
            hint="flatten it first: qemu-img convert -O qcow2 -c IMAGE FLAT.qcow2",
        )
    specific = (info.get("format-specific") or {}).get("data") or {}
    actual = source.size if source.is_ova else int(info.get("actual-size") or 0)
    name = source.qemu_name(fmt)
    compressed, errors = None, 0
    if fmt in ("qcow2", "vmdk"):
        try:
            checked = json.loads(
                run_tool(["qemu-img", "check", "--output=json", name], check=False) or "{}"
            )
        except json.JSONDecodeError:
            checked = {"check-errors": 1}
        compressed = checked.get("compressed-clusters")
        errors = int(checked.get("check-errors", 0)) + int(checked.get("corruptions", 0))
    try:
        extents = json.loads(run_tool(["qemu-img", "map", "--output=json", "-f", fmt, name]))
    except (ToolError, json.JSONDecodeError) as exc:
        raise ImageFileError(f"{source.path}: cannot map the image: {exc}") from exc
    data = tuple((int(e["start"]), int(e["length"])) for e in extents if e.get("data"))
    zero_alloc = sum(
        int(e["length"])
        for e in extents
        if e.get("zero") and not e.get("data") and "offset" in e and fmt != "raw"
    )
    return ImageFacts(
        format=fmt,
        virtual_size=int(info.get("virtual-size") or 0),
        actual_size=int(actual or 0),
        subformat=_vmdk_subformat(specific) if fmt == "vmdk" else None,
        compression=specific.get("compression-type"),
        compressed_clusters=compressed,
        check_errors=errors,
        corrupt=bool(specific.get("corrupt")),
        allocated=sum(length for _, length in data) + zero_alloc,
        allocated_zero=zero_alloc,
        extents=data,
    )


def _vmdk_subformat(specific: dict[str, Any]) -> str | None:
    create_type = specific.get("create-type")
    return str(create_type) if create_type else None


@contextlib.contextmanager
def expose(
    source: ImageSource, fmt: str, *, writable: bool = False, virtual_size: int = 0
) -> Iterator[Path]:
    """Yield a path that reads (and with ``writable`` writes) as the raw virtual disk.

    A plain raw file is yielded as it is; anything else goes through a FUSE
    export of qemu-storage-daemon, which is unmounted and stopped on exit.
    ``virtual_size`` (bytes), when given for a read-only export, enables a
    temporary cache of inflated clusters.
    """
    if fmt == "raw" and not source.is_ova:
        yield source.path
        return
    if not FUSE_DEVICE.exists():
        if writable:
            raise ToolError(
                "qemu-storage-daemon",
                f"writing the image needs FUSE ({FUSE_DEVICE})",
                hint="run where /dev/fuse exists (containers: --device /dev/fuse)",
            )
        with _converted(source, fmt) as raw:
            yield raw
        return
    workdir = Path(tempfile.mkdtemp(prefix="slipway-disk-"))
    mountpoint = workdir / "disk.raw"
    mountpoint.touch()
    file_node = source.file_node()
    if not writable:
        file_node["read-only"] = True
    fmt_node: dict[str, Any] = {
        "driver": fmt,
        "node-name": "disk",
        "read-only": not writable,
        "file": file_node,
    }
    nodes = [fmt_node]
    if writable:
        fmt_node["discard"] = "unmap"
        fmt_node["detect-zeroes"] = "unmap"
    elif virtual_size:
        # Compressed clusters are inflated for every 4 KiB read; a throw-away overlay
        # with copy-on-read keeps what was inflated once (the walk then takes ~40 %
        # less time and e2fsck ~80 % less). The image itself is still opened read-only.
        overlay = workdir / "cache.qcow2"
        run_tool(["qemu-img", "create", "-q", "-f", "qcow2", str(overlay), str(virtual_size)])
        nodes += [
            {
                "driver": "qcow2",
                "node-name": "cache",
                "backing": "disk",
                "file": {"driver": "file", "filename": str(overlay)},
            },
            {"driver": "copy-on-read", "node-name": "cor", "file": "cache"},
        ]
    top = str(nodes[-1]["node-name"])
    args = ["qemu-storage-daemon"]
    for node in nodes:
        args += ["--blockdev", json.dumps(node)]
    args += [
        "--export",
        f"type=fuse,id=exp0,node-name={top},mountpoint={mountpoint},"
        f"writable={'on' if writable else 'off'}",
    ]
    proc: subprocess.Popen[bytes] | None = None
    try:
        try:
            with (workdir / "qsd.log").open("wb") as log:
                proc = subprocess.Popen(
                    args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
                )
        except FileNotFoundError as exc:
            raise ToolError(
                "qemu-storage-daemon", "not installed", hint=_install_hint("qemu-storage-daemon")
            ) from exc
        _wait_mounted(proc, mountpoint, workdir / "qsd.log", source, fmt)
        yield mountpoint
    finally:
        _unmount(mountpoint)
        if proc is not None:
            # Read-only, nothing to flush: SIGKILL saves the ~1.3 s qemu-storage-daemon
            # takes to exit on SIGTERM. A writable export must flush, so it gets SIGTERM.
            _stop(proc, graceful=writable)
        shutil.rmtree(workdir, ignore_errors=True)


@contextlib.contextmanager
def _converted(source: ImageSource, fmt: str) -> Iterator[Path]:
    """Without FUSE: a temporary sparse raw copy (slower: the whole disk is inflated)."""
    workdir = Path(tempfile.mkdtemp(prefix="slipway-disk-"))
    try:
        raw = workdir / "disk.raw"
        try:
            run_tool(
                ["qemu-img", "convert", "-O", "raw", source.qemu_name(fmt), str(raw)], timeout=3600
            )
        except ToolError as exc:
            raise ImageFileError(
                f"{source.path}: qemu cannot read it as {fmt}: {exc.message}"
            ) from exc
        yield raw
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_mounted(
    proc: subprocess.Popen[bytes], mountpoint: Path, log: Path, source: ImageSource, fmt: str
) -> None:
    deadline = time.monotonic() + 60
    while not _is_mounted(mountpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            message = log.read_text(errors="replace").strip()[-400:] or "no export"
            if "fuse" in message.lower():  # the machine, not the image, is at fault
                raise ToolError(
                    "qemu-storage-daemon",
                    message,
                    hint="FUSE exports need /dev/fuse and fusermount3 (fuse3)",
                )
            raise ImageFileError(f"{source.path}: qemu cannot open it as {fmt}: {message}")
        time.sleep(0.005)


def _is_mounted(path: Path) -> bool:
    with contextlib.suppress(OSError):
        text = Path("/proc/self/mountinfo").read_text()
        return any(line.split()[4] == str(path) for line in text.splitlines())
    return False


def _unmount(path: Path) -> None:
    for cmd in (
        ["fusermount3", "-u", "-q", str(path)],
        ["umount", str(path)],
        ["umount", "-l", str(path)],
    ):
        if not _is_mounted(path):
            return
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(cmd, capture_output=True, timeout=30, check=False)


def _stop(proc: subprocess.Popen[bytes], *, graceful: bool) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM if graceful else signal.SIGKILL)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
