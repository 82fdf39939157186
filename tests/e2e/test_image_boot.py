"""The built example image boots under QEMU and cloud-init lets us in over SSH."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

BOOT_TIMEOUT = 600  # seconds; a boot takes 40-120 s here, 330 s was seen at load 16
SSH_OPTS = [
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "ConnectTimeout=10",
    "-o",
    "LogLevel=ERROR",
]


def seed_iso(target: Path, user_data: str, meta_data: str) -> None:
    """A NoCloud seed: an ISO 9660 volume labelled ``cidata``."""
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident="cidata")
    for name, text in (("user-data", user_data), ("meta-data", meta_data)):
        data = text.encode()
        iso_name = "/" + name.upper().replace("-", "_") + ".;1"
        iso.add_fp(BytesIO(data), len(data), iso_name, rr_name=name, joliet_path="/" + name)
    iso.write(str(target))
    iso.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def booted(built_image: Path, tmp_path: Path) -> Iterator[tuple[int, Path, Path]]:
    for tool in ("qemu-system-x86_64", "qemu-img", "ssh", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    pytest.importorskip("pycdlib", reason="pycdlib makes the NoCloud seed")
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key], check=True)
    pub = key.with_suffix(".pub").read_text().strip()
    user_data = (
        "#cloud-config\nusers:\n  - name: tester\n    sudo: ALL=(ALL) NOPASSWD:ALL\n"
        f"    shell: /bin/bash\n    ssh_authorized_keys: ['{pub}']\n"
    )
    seed = tmp_path / "seed.iso"
    seed_iso(seed, user_data, "instance-id: i-boot-test\nlocal-hostname: boot-test\n")
    overlay = tmp_path / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-b", built_image, "-F", "qcow2", overlay],
        check=True,
    )
    port = free_port()
    console = tmp_path / "console.log"
    qemu_log = (tmp_path / "qemu.log").open("wb")
    qemu = subprocess.Popen(
        [
            "qemu-system-x86_64",
            "-accel",
            "tcg,thread=multi",
            "-machine",
            "pc",
            "-smp",
            "2",
            "-m",
            "1024",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            f"file:{console}",
            "-drive",
            f"file={overlay},if=virtio,format=qcow2",
            "-drive",
            f"file={seed},if=virtio,format=raw,readonly=on",
            "-netdev",
            f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22",
            "-device",
            "virtio-net-pci,netdev=n0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=qemu_log,
    )
    try:
        yield port, key, console
    finally:
        qemu.terminate()
        try:
            qemu.wait(timeout=20)
        except subprocess.TimeoutExpired:
            qemu.kill()
            qemu.wait()
        qemu_log.close()


def ssh(
    port: int, key: Path, command: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", *SSH_OPTS, "-i", str(key), "-p", str(port), "tester@127.0.0.1", command],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_the_built_image_boots_and_cloud_init_lets_us_in(
    booted: tuple[int, Path, Path],
) -> None:
    port, key, console = booted
    deadline = time.monotonic() + BOOT_TIMEOUT
    status = None
    while time.monotonic() < deadline:
        try:
            status = ssh(port, key, "cloud-init status --wait", timeout=BOOT_TIMEOUT)
        except subprocess.TimeoutExpired:
            break
        if status.returncode in (0, 2):  # 2: done with recoverable errors
            break
        time.sleep(5)
    tail = console.read_text(errors="replace")[-3000:] if console.exists() else ""
    assert status is not None and "status: done" in status.stdout, (
        f"no SSH login with cloud-init done within {BOOT_TIMEOUT} s\n{tail}"
    )
    facts = ssh(
        port,
        key,
        "sudo -n true && echo sudo-ok; hostname; nproc; "
        "ls /etc/ssh/ | grep '^ssh_host_.*_key$'; sudo nft list ruleset | grep -c 'dport 22'; "
        "findmnt -no SIZE /",
    )
    lines = facts.stdout.split()
    assert "sudo-ok" in lines
    assert "boot-test" in lines
    assert sorted(line for line in lines if line.startswith("ssh_host_")) == [
        "ssh_host_ecdsa_key",
        "ssh_host_ed25519_key",
    ]
