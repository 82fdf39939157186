"""``slipway doctor`` through the real command: every line a new user needs,
and exit 1 exactly when something blocks the main job."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86"
)


def doctor(tmp_path: Path, *args: str, config: str = "") -> tuple[int, list[dict[str, str]]]:
    (tmp_path / "config.toml").write_text(config)
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
        "SLIPWAY_CONFIG": str(tmp_path / "config.toml"),
    }
    for name in ("SLIPWAY_DATABASE_URL", "SLIPWAY_QUEUE_URL"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "slipway", *args, "doctor", "--output", "json"],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    return done.returncode, json.loads(done.stdout)


def by_check(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {row["check"]: row for row in rows}


def test_a_fresh_data_folder_is_ready_for_the_main_job(tmp_path: Path) -> None:
    code, rows = doctor(tmp_path)
    checks = by_check(rows)
    assert code == 0, rows
    assert checks["qemu-system-x86_64"]["detail"].startswith("QEMU emulator version")
    assert checks["software emulation (TCG)"]["status"] == "ok"
    assert checks["accelerator"]["detail"].startswith(("tcg: ", "kvm: "))
    assert checks["base image"]["status"] == "warning"  # scripts/demo builds it
    assert "slipway image build" in checks["base image"]["hint"]
    assert {"free space", "database", "task queue", "mmdebstrap"} <= set(checks)


def test_an_unreachable_database_and_a_missing_qemu_block_the_main_job(tmp_path: Path) -> None:
    code, rows = doctor(
        tmp_path,
        "--database-url", "postgresql://slipway:s3cret@127.0.0.1:1/nowhere",
        config='[clouds.local]\nqemu = "/nonexistent/qemu-system-x86_64"\n',
    )  # fmt: skip
    checks = by_check(rows)
    assert code == 1
    assert checks["database"]["status"] == "error"
    assert "s3cret" not in checks["database"]["detail"]
    assert checks["/nonexistent/qemu-system-x86_64"]["status"] == "error"
    assert checks["/nonexistent/qemu-system-x86_64"]["hint"] == "apt-get install qemu-system-x86"
