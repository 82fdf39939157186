"""The real ``slipway`` command over a copy of the examples, with a config
file the operator wrote: how the catalog refresh tests point a cloud at a
test double or the lab, and run commands against it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.ec2_world import EXAMPLES

__all__ = ["operator_cli"]


def operator_cli(tmp_path: Path, config: str) -> Callable[..., Any]:
    """A function running ``slipway ARGS --output json`` as alice in
    ``tmp_path`` (where the examples are copied), with ``config`` as the
    operator's config.toml; it returns the decoded output and fails the test
    on a non-zero exit."""
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    (tmp_path / "config.toml").write_text(config)
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
        "SLIPWAY_USER": "alice",
        "SLIPWAY_CONFIG": str(tmp_path / "config.toml"),
    }
    env.pop("SLIPWAY_DATABASE_URL", None)

    def slipway(*args: str) -> Any:
        done = subprocess.run(
            [sys.executable, "-m", "slipway", *args, "--output", "json"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return slipway
