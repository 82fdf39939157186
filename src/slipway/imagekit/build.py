"""``slipway image build``: a recipe in, clean compressed images and a package
manifest out, phase by phase.

Phases: bootstrap (mmdebstrap + customisation) → clean → disk (partition,
ext4, GRUB) → one conversion per output format → manifest. Outputs appear
under their final names only when complete (temp file + rename).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from slipway.errors import ToolError
from slipway.imagekit.convert import convert
from slipway.imagekit.disk import DiskLayout, write_disk
from slipway.imagekit.recipe import DiskFormat, Recipe
from slipway.imagekit.rootfs import bootstrap, clean, package_manifest

__all__ = ["BuildPhase", "BuildResult", "build_image", "manifest_path"]


class BuildPhase(StrEnum):
    BOOTSTRAP = "bootstrap"
    CLEAN = "clean"
    DISK = "disk"
    CONVERT = "convert"
    MANIFEST = "manifest"


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote: one file per format, the manifest, seconds per phase."""

    recipe: str
    outputs: dict[str, Path]
    manifest: Path
    packages: int
    rootfs_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)


PhaseCallback = Callable[[BuildPhase, str], None]
"""Called as each phase starts, and again with the same phase as it progresses."""


def manifest_path(output_dir: Path, name: str) -> Path:
    return output_dir / f"{name}.manifest"


def _tree_bytes(root: Path) -> int:
    """Bytes of the regular files under ``root`` (hard links counted once)."""
    seen: set[int] = set()
    total = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            if st.st_ino not in seen:
                seen.add(st.st_ino)
                total += st.st_size
    return total


def _mounts_under(folder: Path) -> list[Path]:
    """Mount points at or below ``folder``, deepest first."""
    try:
        lines = Path("/proc/self/mountinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    prefix = str(folder.resolve())
    found = []
    for line in lines:
        point = line.split()[4].replace("\\040", " ")
        if point == prefix or point.startswith(prefix + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _remove_work(work: Path) -> None:
    """Delete the work folder, but never through a mount an aborted bootstrap left."""
    for point in _mounts_under(work):
        subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)
    if _mounts_under(work):
        raise ToolError(
            "umount",
            f"{work}: file systems are still mounted below; not deleting it",
            hint="unmount them by hand, then remove the folder",
        )
    shutil.rmtree(work, ignore_errors=True)


def build_image(
    recipe: Recipe,
    output_dir: Path,
    *,
    cache_dir: Path,
    work_dir: Path | None = None,
    formats: tuple[DiskFormat, ...] | None = None,
    on_phase: PhaseCallback | None = None,
) -> BuildResult:
    """Build ``recipe`` into ``output_dir``; packages are cached in ``cache_dir``."""
    formats = formats or recipe.formats
    notify = on_phase or (lambda _phase, _detail: None)
    output_dir.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    layout = DiskLayout.new(recipe.disk_bytes)
    work = Path(tempfile.mkdtemp(prefix=f".{recipe.name}.build-", dir=work_dir or output_dir))
    try:
        rootfs = work / "rootfs"
        started = time.monotonic()
        notify(BuildPhase.BOOTSTRAP, f"{recipe.distribution} {recipe.release}")
        bootstrap(
            recipe,
            rootfs,
            work,
            cache_dir / f"{recipe.distribution}-{recipe.release}-{recipe.arch}",
            layout,
            on_step=lambda step: notify(BuildPhase.BOOTSTRAP, step),
        )
        seconds[BuildPhase.BOOTSTRAP] = time.monotonic() - started

        started = time.monotonic()
        notify(BuildPhase.CLEAN, "host keys, machine-id, logs, caches")
        clean(rootfs)
        packages = package_manifest(rootfs)
        rootfs_bytes = _tree_bytes(rootfs)
        seconds[BuildPhase.CLEAN] = time.monotonic() - started

        started = time.monotonic()
        notify(BuildPhase.DISK, f"{recipe.disk_bytes // 2**20} MiB, ext4, GRUB")
        raw = work / "disk.raw"
        write_disk(rootfs, raw, layout)
        shutil.rmtree(rootfs)
        seconds[BuildPhase.DISK] = time.monotonic() - started

        started = time.monotonic()
        outputs: dict[str, Path] = {}
        for fmt in formats:
            notify(BuildPhase.CONVERT, fmt.value)
            target = output_dir / f"{recipe.name}.{fmt.value}"
            convert(raw, target, fmt, name=recipe.name)
            outputs[fmt.value] = target
        seconds[BuildPhase.CONVERT] = time.monotonic() - started

        notify(BuildPhase.MANIFEST, f"{len(packages)} packages")
        manifest = manifest_path(output_dir, recipe.name)
        text = "".join(f"{n}\t{v}\t{a}\n" for n, v, a in packages)
        tmp = manifest.with_name(f".{manifest.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(manifest)
    finally:
        _remove_work(work)
    return BuildResult(
        recipe=recipe.name,
        outputs=outputs,
        manifest=manifest,
        packages=len(packages),
        rootfs_bytes=rootfs_bytes,
        seconds=seconds,
    )
