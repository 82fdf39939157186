"""A sync whose process is killed (SIGKILL) in the middle of a download:
nothing half-done is visible, and the next sync resumes the download where
the dead one stopped and converges, with one image and no duplicate."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.domain.sync import ImageState, SyncOutcome
from slipway.imagekit.store import ImageStore
from tests.sync_world import SyncWorld, qcow2_bytes


@pytest.fixture
def world(tmp_path: Path) -> Iterator[SyncWorld]:
    made = SyncWorld(tmp_path, f"sqlite:///{tmp_path}/slipway.db")
    yield made
    made.close()


def _env(world: SyncWorld) -> dict[str, str]:
    settings = world.settings
    return {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(settings.data_dir),
        "SLIPWAY_DATABASE_URL": settings.database_url,
        "SLIPWAY_USER": "admin",
        "SLIPWAY_FETCH_PRIVATE_ADDRESSES": "yes",
        "SLIPWAY_CA_DIR": settings.ca_dir,
        "SLIPWAY_CONFIG": str(world.root / "none.toml"),
    }


def test_a_sync_killed_mid_download_resumes_and_converges(world, tmp_path):
    data = qcow2_bytes(tmp_path, "alpha", size="64M", written="12M")
    image = world.image("alpha", data)
    world.publish(image)
    world.subscribe()
    world.server.drip = 0.01  # about 6 MiB/s: time to kill it half-way
    cache = world.data_dir / "sync-cache"

    log = tmp_path / "sync.log"
    with log.open("wb") as errors:
        sync = subprocess.Popen(
            [sys.executable, "-m", "slipway", "sync", "run", "site", "--wait"],
            env=_env(world), stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        parts = list(cache.glob("*.part"))
        if parts and parts[0].stat().st_size >= 2 * 1024 * 1024:
            break
        assert sync.poll() is None, log.read_text()
        time.sleep(0.05)
    else:
        pytest.fail("the download never got going")
    sync.send_signal(signal.SIGKILL)
    sync.wait(timeout=30)

    store = ImageStore(world.data_dir / "images")
    assert store.list() == []  # nothing half-done is visible
    (held,) = world.sync().status("site").images
    assert held.state is ImageState.PENDING
    written = next(cache.glob("*.part")).stat().st_size

    world.server.drip = 0.0
    # The dead worker's lease would hold the subscription for 15 minutes;
    # a new sync in a fresh process waits for that, so let it run out now.
    from datetime import UTC, datetime

    from slipway.adapters.store.sql import SqlUnitOfWork
    from slipway.bootstrap import engine_for

    with SqlUnitOfWork(engine_for(world.settings.database_url)) as uow:
        holder = uow.sync.holder("site", datetime.now(UTC))
        assert holder is not None and holder.endswith(f":{sync.pid}")  # the dead process
        uow.sync.release("site", holder, None)
        uow.commit()

    record = world.sync().run("site")

    assert record.outcome is SyncOutcome.SUCCEEDED, record.steps
    (download,) = [s for s in record.steps if s.step == "download"]
    assert download.bytes == len(data) - written  # resumed, not started again
    (stored,) = store.list()
    assert stored.sha512 == image.sha512
    assert [i.state for i in world.sync().status("site").images] == [ImageState.ACTIVE]
    assert not list(cache.glob("*.part"))
