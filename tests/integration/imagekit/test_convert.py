"""Conversions keep the disk's content identical, whatever the route."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from slipway.imagekit.convert import convert, open_image
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.tools import run


def identical(a: Path, b: Path) -> bool:
    # qemu-img compare probes formats; an OVA goes through open_image's json: name.
    args = [*open_image(a).qemu_args()[-1:], *open_image(b).qemu_args()[-1:]]
    proc = run(["qemu-img", "compare", *args], ok_codes=(0, 1))
    return proc.returncode == 0


def round_trip(start: Path, work: Path) -> list[Path]:
    """start -> qcow2 -> raw -> vmdk -> ova -> qcow2, every step from the previous file."""
    steps = [DiskFormat.QCOW2, DiskFormat.RAW, DiskFormat.VMDK, DiskFormat.OVA, DiskFormat.QCOW2]
    made, current = [], start
    for i, fmt in enumerate(steps):
        target = work / f"step{i}.{fmt.value}"
        convert(open_image(current), target, fmt, name=f"step{i}")
        made.append(target)
        current = target
    return made


def test_a_round_trip_through_every_format_keeps_identical_content(
    small_disk: Path, tmp_path: Path
) -> None:
    made = round_trip(small_disk, tmp_path)
    for path in made:
        assert identical(small_disk, path), path
    assert [open_image(p).container for p in made] == [
        DiskFormat.QCOW2,
        DiskFormat.RAW,
        DiskFormat.VMDK,
        DiskFormat.OVA,
        DiskFormat.QCOW2,
    ]


def test_qcow2_output_is_zlib_compressed_and_vmdk_stream_optimized(
    small_disk: Path, tmp_path: Path
) -> None:
    import json

    convert(open_image(small_disk), tmp_path / "a.qcow2", DiskFormat.QCOW2)
    convert(open_image(small_disk), tmp_path / "a.vmdk", DiskFormat.VMDK)
    qcow = json.loads(run(["qemu-img", "info", "--output=json", tmp_path / "a.qcow2"]).stdout)
    vmdk = json.loads(run(["qemu-img", "info", "--output=json", tmp_path / "a.vmdk"]).stdout)
    assert qcow["format-specific"]["data"]["compression-type"] == "zlib"
    check = json.loads(run(["qemu-img", "check", "--output=json", tmp_path / "a.qcow2"]).stdout)
    assert check["compressed-clusters"] > 0
    assert vmdk["format-specific"]["data"]["create-type"] == "streamOptimized"


def test_an_ova_holds_the_descriptor_then_the_manifest_then_the_disk(
    small_disk: Path, tmp_path: Path
) -> None:
    import hashlib

    ova = tmp_path / "app.ova"
    convert(open_image(small_disk), ova, DiskFormat.OVA, name="app")
    with tarfile.open(ova) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["app.ovf", "app.mf", "app-disk1.vmdk"]
        assert all(m.size > 0 for m in members)
        manifest = tar.extractfile("app.mf").read().decode()  # type: ignore[union-attr]
        for member in ("app.ovf", "app-disk1.vmdk"):
            data = tar.extractfile(member).read()  # type: ignore[union-attr]
            assert f"SHA256({member})= {hashlib.sha256(data).hexdigest()}" in manifest
    with ova.open("rb") as fh:
        assert fh.read(512)[257:262] == b"ustar"


def test_a_failed_conversion_leaves_no_output_behind(small_disk: Path, tmp_path: Path) -> None:
    import shutil

    from slipway.errors import ImageFileError

    source = tmp_path / "vanishing.raw"
    shutil.copy(small_disk, source)
    image = open_image(source)
    source.unlink()  # qemu-img now fails half-way through the job
    target = tmp_path / "out" / "x.qcow2"
    with pytest.raises(ImageFileError):
        convert(image, target, DiskFormat.QCOW2)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_an_image_that_reads_other_files_is_refused_unless_allowed(
    small_disk: Path, tmp_path: Path
) -> None:
    from slipway.errors import ImageFileError

    overlay = tmp_path / "overlay.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", small_disk, "-F", "raw", overlay])
    flat = tmp_path / "flat.vmdk"
    run(["qemu-img", "create", "-q", "-f", "vmdk", "-o", "subformat=monolithicFlat", flat, "1M"])
    for path in (overlay, flat):
        with pytest.raises(ImageFileError, match="reads other files"):
            open_image(path)
    flattened = tmp_path / "flat.qcow2"
    convert(open_image(overlay, allow_external=True), flattened, DiskFormat.QCOW2)
    assert identical(small_disk, flattened)
