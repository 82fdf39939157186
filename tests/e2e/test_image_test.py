"""``slipway image test`` on real QEMU machines, through the command line: the
example image passes; images derived from it without sshd and with cloud-init
disabled fail naming the right check; an image that does not boot fails at
its timeout; Ctrl-C and SIGTERM end a test early. Nothing is ever left
behind: no QEMU process, no machine folder.

Machines boot two at a time (the CI machine has two cores) under TCG.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.qemu_support import qemu_pids

pytestmark = pytest.mark.slow

TIMEOUT_S = 1200  # two guests at once on two shared cores: one took 9.5 min at load 6
CLI = [sys.executable, "-m", "slipway"]


@dataclass
class Outcome:
    data: Path
    returncode: int
    report: dict[str, Any]
    stderr: str
    seconds: float


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(data), "SLIPWAY_CONFIG": str(data / "none")}
    for key in ("SLIPWAY_DATABASE_URL", "SLIPWAY_QUEUE_URL"):
        env.pop(key, None)
    return env


def image_test(data: Path, image: str | Path, *args: str) -> Outcome:
    data.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    done = subprocess.run(
        [*CLI, "image", "test", str(image), "--accelerator", "tcg", "--output", "json", *args],
        capture_output=True,
        text=True,
        env=_env(data),
        timeout=TIMEOUT_S + 120,
        check=False,
    )
    report = json.loads(done.stdout) if done.stdout.strip() else {}
    return Outcome(data, done.returncode, report, done.stderr, time.monotonic() - started)


def left_behind(data: Path) -> list[str]:
    machines = data / "machines"
    folders = [p.name for p in machines.iterdir()] if machines.is_dir() else []
    return [f"qemu pid {pid}" for pid in qemu_pids(data)] + folders


@pytest.fixture(scope="module")
def qemu() -> None:
    for tool in ("qemu-system-x86_64", "qemu-img", "qemu-storage-daemon", "debugfs"):
        if shutil.which(tool) is None and shutil.which(tool, path="/usr/sbin:/sbin") is None:
            pytest.skip(f"{tool} is not installed")
    if not Path("/dev/fuse").exists():
        pytest.skip("deriving the broken images needs /dev/fuse")


@pytest.fixture(scope="module")
def outcomes(
    qemu: None, built_image: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Outcome]]:
    """The example image (from the local image store) and two broken ones (files)."""
    from tests.derived_images import derive

    root = tmp_path_factory.mktemp("image-test")
    example_data = root / "example"
    subprocess.run(
        [*CLI, "image", "import", str(built_image), "--name", "debian-12-minimal"],
        env=_env(example_data),
        check=True,
        capture_output=True,
    )
    images = {
        name: derive(built_image, root / f"{name}.qcow2", name)
        for name in ("no-cloud-init", "no-sshd")
    }
    jobs = {
        "example": (example_data, "debian-12-minimal"),
        "no-cloud-init": (root / "no-cloud-init-data", str(images["no-cloud-init"])),
        "no-sshd": (root / "no-sshd-data", str(images["no-sshd"])),
    }
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(image_test, data, image, "--timeout", str(TIMEOUT_S))
            for name, (data, image) in jobs.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    yield results
    for outcome in results.values():  # never leave a machine behind, even on failure
        for pid in qemu_pids(outcome.data):
            os.kill(pid, signal.SIGKILL)


def test_the_example_image_passes_every_check(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["example"]
    report = outcome.report
    assert outcome.returncode == 0, (report.get("reason"), report.get("console_tail"))
    assert report["passed"] and report["failed_check"] is None
    assert {c["name"]: c["status"] for c in report["checks"]} == {
        "boot": "ok",
        "ssh": "ok",
        "cloud-init": "ok",
        "root-fs": "ok",
        "failed-units": "ok",
        "host-keys": "ok",
        "datasource": "ok",
        "firewall": "ok",
        "no-password": "ok",
    }
    assert 0 < report["seconds_to_ssh"] <= report["seconds_to_cloud_init"] < TIMEOUT_S
    assert report["accelerator"] == "tcg"
    details = {c["name"]: c["detail"] for c in report["checks"]}
    assert details["datasource"].startswith("DataSourceNoCloud")
    assert details["firewall"] == "nftables (active): input policy drop for IPv4 and IPv6"
    assert left_behind(outcome.data) == []


def test_an_image_without_sshd_fails_the_ssh_check(outcomes: dict[str, Outcome]) -> None:
    outcome = outcomes["no-sshd"]
    report = outcome.report
    assert outcome.returncode == 1, outcome.stderr
    assert report["failed_check"] == "ssh", report["reason"]
    assert report["reason"].startswith("nothing answered SSH on port 22")
    assert "Cloud-init v." in report["console_tail"]  # it ran and finished
    assert outcome.seconds < TIMEOUT_S  # the console told, well before the timeout
    assert left_behind(outcome.data) == []


def test_an_image_with_cloud_init_disabled_fails_the_cloud_init_check(
    outcomes: dict[str, Outcome],
) -> None:
    outcome = outcomes["no-cloud-init"]
    report = outcome.report
    assert outcome.returncode == 1, outcome.stderr
    assert report["failed_check"] == "cloud-init", report["reason"]
    assert report["reason"].startswith("cloud-init did not run")
    assert "login:" in report["console_tail"]
    assert outcome.seconds < TIMEOUT_S
    assert left_behind(outcome.data) == []


def test_an_image_that_does_not_boot_fails_within_its_timeout(qemu: None, tmp_path: Path) -> None:
    blank = tmp_path / "blank.qcow2"  # no boot loader: the firmware finds nothing to boot
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", blank, "1G"], check=True)
    outcome = image_test(tmp_path / "data", blank, "--timeout", "20")
    assert outcome.returncode == 1, outcome.stderr
    assert outcome.report["failed_check"] == "boot"
    assert outcome.report["reason"].startswith("nothing on the serial console within 20 s")
    assert outcome.seconds < 20 + 30  # start, poll and clean-up on a loaded host
    assert left_behind(outcome.data) == []


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_test_deletes_its_machine(
    qemu: None, built_image: Path, tmp_path: Path, signal_number: int
) -> None:
    data = tmp_path / "data"
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [*CLI, "image", "test", str(built_image), "--accelerator", "tcg"],
            env=_env(data),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 60
        while not qemu_pids(data) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert qemu_pids(data), "the machine never started"
        time.sleep(3)  # into the wait for SSH
        process.send_signal(signal_number)
        assert process.wait(timeout=60) == 130, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert left_behind(data) == []
