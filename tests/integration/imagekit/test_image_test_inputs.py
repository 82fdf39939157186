"""``image test`` refuses what it cannot boot before it creates anything."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.integration.imagekit.test_bad_inputs import slipway


def test_a_raw_image_is_refused_with_the_conversion_to_make(
    small_disk: Path, tmp_path: Path
) -> None:
    proc = slipway("image", "test", str(small_disk), data_dir=tmp_path / "data")
    assert proc.returncode == 2, proc.stderr
    assert "a raw image; the local cloud boots qcow2" in proc.stderr
    assert f"slipway image convert {small_disk} --to qcow2" in proc.stderr
    assert not (tmp_path / "data" / "machines").exists()


def test_an_overlay_naming_a_backing_file_is_refused(small_disk: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", small_disk, "-F", "raw", overlay],
        check=True,
    )
    proc = slipway("image", "test", str(overlay), data_dir=tmp_path / "data")
    assert proc.returncode == 2, proc.stderr
    assert f"reads other files ({small_disk})" in proc.stderr
    assert not (tmp_path / "data" / "machines").exists()


def test_a_name_neither_file_nor_stored_exits_3(tmp_path: Path) -> None:
    proc = slipway("image", "test", "debian-13-nowhere", data_dir=tmp_path / "data")
    assert proc.returncode == 3, proc.stderr
    assert "no image 'debian-13-nowhere' in the local image store" in proc.stderr
    assert "slipway image list" in proc.stderr


def test_a_bad_timeout_or_login_user_exits_2(small_disk: Path, tmp_path: Path) -> None:
    image = tmp_path / "small.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", small_disk, image], check=True)
    for args, said in (
        (["--timeout", "0"], "the timeout must be positive"),
        (["--login-user", "root"], "login user 'root' is not a valid user name"),
    ):
        proc = slipway("image", "test", str(image), *args, data_dir=tmp_path / "data")
        assert proc.returncode == 2, proc.stderr
        assert said in proc.stderr
    assert not (tmp_path / "data" / "machines").exists()
