"""A ``slipway worker`` process killed with SIGKILL while it provisions a
run on the OpenStack lab, the moment Nova has the server: a second worker
process adopts that server (found by the run's client token) instead of
creating another, and terminating the run leaves nothing behind.

Real processes, the real command line, the real connector and lab; the lab's
compute driver boots no guest, so the run is followed up to the SSH wait,
where the second worker keeps it, and no further.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from slipway.domain.machines import RUN_TAG
from tests.integration.ec2_world import EXAMPLES
from tests.integration.test_openstack_runs import (  # the lab's image and flavor
    CLOUD,
    _sdk,
    lab_for_the_examples,  # noqa: F401
    ports_gone,
)

pytestmark = pytest.mark.usefixtures("lab_for_the_examples")


@pytest.fixture
def slipway_env(tmp_path: Path, openstack_clouds: Path) -> dict[str, str]:
    import shutil

    shutil.copytree(EXAMPLES, tmp_path / "examples")
    config = tmp_path / "config.toml"
    config.write_text(f'[clouds.{CLOUD}]\ncloud = "lab-demo"\nclouds_yaml = "{openstack_clouds}"\n')
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
        "SLIPWAY_USER": "alice",
        "SLIPWAY_CONFIG": str(config),
    }
    env.pop("SLIPWAY_DATABASE_URL", None)
    env.pop("SLIPWAY_QUEUE_URL", None)
    return env


def _slipway(env: dict[str, str], cwd: Path, *args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "slipway", *args, "--output", "json"],
        capture_output=True, text=True, env=env, cwd=cwd, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def workers(slipway_env: dict[str, str], tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for worker in started:
        if worker.poll() is None:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=30)


def _worker(env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "slipway", "worker"], env=env, cwd=cwd, stdout=out, stderr=out
        )


def _servers_of(demo: Any, run_id: str) -> list[Any]:
    return [s for s in demo.compute.servers() if (s.metadata or {}).get(RUN_TAG) == run_id]


def test_a_worker_killed_mid_provisioning_leaves_one_server_that_the_next_adopts(
    slipway_env: dict[str, str],
    tmp_path: Path,
    openstack_clouds: Path,
    workers: list[subprocess.Popen[bytes]],
) -> None:
    demo = _sdk(openstack_clouds, "lab-demo")
    _slipway(slipway_env, tmp_path, "import", "examples")
    run = _slipway(
        slipway_env, tmp_path, "deploy", "examples/images/debian-12", "--cloud", CLOUD, "--no-wait"
    )
    run_id = run["id"]
    log = tmp_path / "workers.log"

    workers.append(_worker(slipway_env, tmp_path, log))
    deadline = time.monotonic() + 120
    while not _servers_of(demo, run_id):
        assert time.monotonic() < deadline, log.read_text()
        assert workers[0].poll() is None, log.read_text()
        time.sleep(0.05)
    workers[0].send_signal(signal.SIGKILL)  # the server exists; the run may not know it yet
    workers[0].wait(timeout=30)
    (made,) = _servers_of(demo, run_id)

    workers.append(_worker(slipway_env, tmp_path, log))
    deadline = time.monotonic() + 120
    while True:
        shown = _slipway(slipway_env, tmp_path, "run", "show", run_id)
        if shown.get("machine_id") and shown["state"] not in ("pending", "provisioning"):
            break
        assert time.monotonic() < deadline, (shown, log.read_text())
        time.sleep(0.5)
    assert shown["machine_id"] == made.id
    assert [s.id for s in _servers_of(demo, run_id)] == [made.id]  # adopted, not duplicated

    _slipway(slipway_env, tmp_path, "terminate", run_id)
    deadline = time.monotonic() + 120
    # Ended before it was ready: the run is cancelled rather than terminated.
    while (shown := _slipway(slipway_env, tmp_path, "run", "show", run_id))["state"] not in (
        "terminated",
        "cancelled",
    ):
        assert time.monotonic() < deadline, (shown["state"], shown["step"], shown["message"])
        time.sleep(0.5)
    demo.compute.wait_for_delete(made, interval=0.3, wait=60)
    assert _servers_of(demo, run_id) == []
    assert ports_gone(demo, made.id)
