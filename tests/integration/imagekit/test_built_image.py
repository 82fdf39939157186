"""What the example build produces, read offline from the image itself."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slipway.imagekit.compact import partitions
from slipway.imagekit.convert import convert, open_image
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.tools import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def raw_copy(built_image: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("built") / "disk.raw"
    convert(open_image(built_image), raw, DiskFormat.RAW)
    return raw


def debugfs(raw: Path, offset: int, request: str) -> str:
    return run(["debugfs", f"{raw}?offset={offset}", "-R", request]).stdout.decode()


def test_the_image_is_a_compressed_qcow2_of_2_gib_with_a_manifest(built_image: Path) -> None:
    info = json.loads(run(["qemu-img", "info", "--output=json", built_image]).stdout)
    check = json.loads(run(["qemu-img", "check", "--output=json", built_image]).stdout)
    assert info["format"] == "qcow2"
    assert info["virtual-size"] == 2 * 1024**3
    assert check["compressed-clusters"] > 0.9 * check["allocated-clusters"]
    assert built_image.stat().st_size < 250 * 1024**2
    manifest = built_image.with_suffix(".manifest").read_text().splitlines()
    names = {line.split("\t")[0] for line in manifest}
    assert {"cloud-init", "openssh-server", "linux-image-cloud-amd64", "e2fsprogs"} <= names


def test_one_ext4_partition_fills_the_disk(raw_copy: Path) -> None:
    parts = partitions(raw_copy)
    assert len(parts) == 1
    assert parts[0].ext
    assert parts[0].offset == 1024**2
    assert parts[0].offset + parts[0].size == 2 * 1024**3
    assert run(["e2fsck", "-fn", f"{raw_copy}?offset={parts[0].offset}"]).returncode == 0


def test_no_credentials_host_keys_machine_id_or_logs_ship(raw_copy: Path) -> None:
    off = 1024**2
    assert debugfs(raw_copy, off, "cat /etc/machine-id") == ""
    ssh = debugfs(raw_copy, off, "ls -l /etc/ssh")
    assert "ssh_host_" not in ssh
    shadow = debugfs(raw_copy, off, "cat /etc/shadow").splitlines()
    assert shadow and all(line.split(":")[1].startswith(("*", "!")) for line in shadow)
    assert "bash_history" not in debugfs(raw_copy, off, "ls /root")
    assert log_files(raw_copy, off, "/var/log") == []


def log_files(raw: Path, offset: int, folder: str) -> list[str]:
    """Regular files under ``folder``, walking it with debugfs ``ls -p``."""
    found: list[str] = []
    for line in debugfs(raw, offset, f"ls -p {folder}").splitlines():
        fields = line.split("/")  # /inode/mode/uid/gid/name/size/
        if len(fields) < 7 or fields[5] in (".", ".."):
            continue
        path = f"{folder}/{fields[5]}"
        if fields[2].startswith("40"):
            found += log_files(raw, offset, path)
        elif fields[2].startswith("100"):
            found.append(path)
    return found


def test_cloud_init_and_sshd_are_configured_as_the_guidelines_ask(raw_copy: Path) -> None:
    off = 1024**2
    cfg = debugfs(raw_copy, off, "cat /etc/cloud/cloud.cfg.d/90_slipway.cfg")
    assert "NoCloud" in cfg and "ssh_pwauth: false" in cfg and "disable_root: true" in cfg
    sshd = debugfs(raw_copy, off, "cat /etc/ssh/sshd_config.d/50-slipway.conf")
    assert "PermitRootLogin no" in sshd and "PasswordAuthentication no" in sshd
    assert debugfs(raw_copy, off, "cat /etc/hostname").strip() == "localhost"


def test_the_fast_first_boot_is_wired_in(raw_copy: Path) -> None:
    off = 1024**2
    wants = debugfs(raw_copy, off, "ls -l /etc/systemd/system/cloud-init.target.wants")
    assert "slipway-cloud-init-preload.service" in wants
    assert "slipway-cloud-init-preload.socket" in wants
    for unit, args in (
        ("cloud-init-local", "init --local"),
        ("cloud-final", "modules --mode=final"),
    ):
        drop_in = debugfs(
            raw_copy, off, f"cat /etc/systemd/system/{unit}.service.d/50-slipway-preload.conf"
        )
        assert f"cloud-init-preload stage {args}\n" in drop_in
    slipway_lib = debugfs(raw_copy, off, "ls /usr/lib/slipway")
    assert "cloud-init-preload" in slipway_lib and "cloud-init-preload.d" not in slipway_lib
    # what cloud-init's import reads, recorded in the image for the boot to read ahead
    listing = debugfs(raw_copy, off, "cat /usr/lib/slipway/cloud-init-preload.files")
    assert "/usr/lib/python3/dist-packages/cloudinit/__pycache__/" in listing
    assert "libpython" in listing or "/usr/bin/python3" in listing
    masked = debugfs(raw_copy, off, "stat /etc/systemd/system/e2scrub_reap.service")
    assert 'Fast link dest: "/dev/null"' in masked
    # the initramfs carries the cloud disk drivers only
    boot = debugfs(raw_copy, off, "ls -l /boot")
    sizes = [int(line.split()[-5]) for line in boot.splitlines() if "initrd.img-" in line]
    assert sizes and max(sizes) < 12 * 1024**2
