"""``slipway image convert``: any of qcow2, raw, vmdk and OVA to any other,
through ``qemu-img convert``. An OVA's disk is read in place inside the tar.

Outputs are compressed where the format allows (zlib qcow2, streamOptimized
VMDK) and written under a temporary name, renamed only when complete.
"""

from __future__ import annotations

import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from slipway.errors import ImageFileError, ToolError
from slipway.imagekit.ova import find_disk, write_ova
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.tools import ImageInfo, qemu_img_info, run

__all__ = ["SourceImage", "atomic_target", "convert", "open_image", "qemu_convert"]

_FORMAT_OPTIONS: dict[DiskFormat, list[str]] = {
    DiskFormat.QCOW2: ["-O", "qcow2", "-c", "-o", "compression_type=zlib"],
    DiskFormat.RAW: ["-O", "raw"],
    DiskFormat.VMDK: ["-O", "vmdk", "-o", "subformat=streamOptimized"],
}
_KNOWN = {"qcow2", "raw", "vmdk"}


@dataclass(frozen=True)
class SourceImage:
    """An image as QEMU should open it: the format, the filename QEMU reads
    (a ``json:`` pseudo-filename for a disk inside an OVA), sizes in bytes."""

    path: Path
    container: DiskFormat
    disk_format: str
    qemu_filename: str
    virtual_size: int

    def qemu_args(self) -> list[str]:
        """``-f FORMAT FILENAME`` for qemu-img (no format for json: filenames)."""
        if self.qemu_filename.startswith("json:"):
            return [self.qemu_filename]
        return ["-f", self.disk_format, self.qemu_filename]


def _is_ova(path: Path) -> bool:
    if path.suffix.lower() == ".ova":
        return True
    try:
        with tarfile.open(path, "r:") as tar:
            return any(m.name.lower().endswith(".ovf") for m in tar.getmembers()[:4])
    except (tarfile.TarError, OSError):
        return False


def _looks_like_disk(path: Path) -> bool:
    """A raw disk carries an MBR/GPT boot signature, or is a bare ext file system."""
    with path.open("rb") as fh:
        head = fh.read(2048)
    return (len(head) >= 512 and head[510:512] == b"\x55\xaa") or head[1080:1082] == b"\x53\xef"


def open_image(path: Path, *, allow_external: bool = False) -> SourceImage:
    """Identify ``path`` (qcow2, raw, vmdk or OVA); unreadable input raises ImageFileError.

    An image that makes QEMU read other files (a backing file, a data file, a
    VMDK extent elsewhere) is refused unless ``allow_external``: a downloaded
    image could otherwise pull any host file into its output.
    """
    if not path.is_file():
        raise ImageFileError(f"{path}: no such image file")
    if path.stat().st_size == 0:
        raise ImageFileError(f"{path}: the file is empty")
    if _is_ova(path):
        disk = find_disk(path)
        inner = {
            "driver": "raw",
            "offset": disk.offset,
            "size": disk.size,
            "file": {"driver": "file", "filename": str(path.resolve())},
        }
        fmt = _inner_format(disk.name)
        filename = "json:" + json.dumps({"driver": fmt, "file": inner})
        info = qemu_img_info_json(filename)
        return SourceImage(path, DiskFormat.OVA, fmt, filename, info.virtual_size)
    info = qemu_img_info(path)
    fmt = info.format
    if fmt not in _KNOWN:
        raise ImageFileError(
            f"{path}: unsupported image format {fmt!r}", hint="qcow2, raw, vmdk or ova"
        )
    if fmt == "raw" and not _looks_like_disk(path):
        raise ImageFileError(f"{path}: not a disk image (no partition table or file system found)")
    if not allow_external:
        _refuse_external_files(path, info)
    if fmt == "qcow2":
        _check_qcow2(path)
    return SourceImage(path, DiskFormat(fmt), fmt, str(path), info.virtual_size)


def _refuse_external_files(path: Path, info: ImageInfo) -> None:
    data = info.get("format-specific", {}).get("data", {})
    others = [info.get("backing-filename"), data.get("data-file")]
    own = str(path.resolve())
    others += [
        e.get("filename")
        for e in data.get("extents", [])
        if e.get("filename") not in (own, str(path))
    ]
    named = [str(o) for o in others if o]
    if named:
        raise ImageFileError(
            f"{path}: reads other files ({', '.join(named)})",
            hint="if you trust it, flatten it with: slipway image convert --allow-external",
        )


def _inner_format(member: str) -> str:
    lower = member.lower()
    if lower.endswith(".vmdk"):
        return "vmdk"
    if lower.endswith(".qcow2"):
        return "qcow2"
    return "raw"


def qemu_img_info_json(filename: str) -> ImageInfo:
    try:
        proc = run(["qemu-img", "info", "--output=json", filename])
    except ToolError as exc:
        raise ImageFileError(f"not a readable disk image: {exc.message}") from exc
    return ImageInfo(json.loads(proc.stdout))


def _check_qcow2(path: Path) -> None:
    # Exit 0: clean; 3: leaked clusters only (harmless); 2: corrupt; 1: cannot check.
    proc = run(["qemu-img", "check", "-f", "qcow2", "--output=json", path], ok_codes=range(256))
    if proc.returncode in (0, 3):
        return
    try:
        report = json.loads(proc.stdout)
        what = f"{report.get('corruptions', 0)} corrupt clusters"
        if report.get("check-errors"):
            what += f", {report['check-errors']} unreadable"
    except ValueError:
        lines = (proc.stderr or proc.stdout).decode(errors="replace").strip().splitlines()
        what = lines[-1] if lines else "qemu-img check failed"
    raise ImageFileError(
        f"{path}: damaged qcow2 image ({what})",
        hint="the file may be truncated or corrupt; download or copy it again",
    )


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """A temporary path next to ``target``, renamed to it only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(0o644)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


def qemu_convert(source: SourceImage | Path, target: Path, fmt: DiskFormat) -> None:
    """Run ``qemu-img convert`` from ``source`` to ``target`` (not OVA)."""
    args = source.qemu_args() if isinstance(source, SourceImage) else ["-f", "raw", str(source)]
    try:
        run(["qemu-img", "convert", *args, *_FORMAT_OPTIONS[fmt], target])
    except ToolError as exc:
        raise ImageFileError(f"cannot read the image: {exc.message}") from exc


def convert(
    source: SourceImage | Path, target: Path, fmt: DiskFormat, *, name: str | None = None
) -> None:
    """Write ``source`` (a SourceImage, or a raw disk path) as ``fmt`` to ``target``."""
    with atomic_target(target) as tmp:
        if fmt is not DiskFormat.OVA:
            qemu_convert(source, tmp, fmt)
            return
        vmdk = tmp.with_name(tmp.name + ".vmdk")
        try:
            qemu_convert(source, vmdk, DiskFormat.VMDK)
            capacity = (
                source.virtual_size if isinstance(source, SourceImage) else source.stat().st_size
            )
            write_ova(vmdk, tmp, name=name or target.stem, capacity=capacity)
        finally:
            vmdk.unlink(missing_ok=True)
