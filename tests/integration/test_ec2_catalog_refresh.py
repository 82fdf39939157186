"""``slipway sizes refresh --cloud C`` against moto: the cloud's instance types
become a new version of its catalog, through the real command."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.integration.ec2_proxy import Ec2Proxy
from tests.integration.ec2_world import AWS, EXAMPLES


def test_refresh_saves_the_instance_types_as_a_new_catalog_version(
    tmp_path: Path, ec2_proxy: Ec2Proxy
) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    config = tmp_path / "config.toml"  # the operator points the cloud at moto
    config.write_text(f'[clouds.{AWS}]\nendpoint_url = "{ec2_proxy.url}"\n')
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(tmp_path / "data"),
        "SLIPWAY_USER": "alice",
        "SLIPWAY_CONFIG": str(config),
    }
    env.pop("SLIPWAY_DATABASE_URL", None)

    def slipway(*args: str) -> object:
        done = subprocess.run(
            [sys.executable, "-m", "slipway", *args, "--output", "json"],
            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    slipway("import", "examples")
    refreshed = slipway("sizes", "refresh", "--cloud", AWS)
    assert refreshed == {
        "cloud": AWS,
        "catalog": f"examples/catalogs/{AWS}",
        "version": 2,
        "status": "updated",
        "flavors": refreshed["flavors"],  # type: ignore[index]
    }
    assert refreshed["flavors"] > 100  # type: ignore[index]
    flavors = {f["name"]: f for f in slipway("sizes", "list", "--cloud", AWS)}  # type: ignore[attr-defined]
    assert (flavors["t3.micro"]["cpu"], flavors["t3.micro"]["ram"]) == (2, 1.0)
    assert flavors["t3.micro"]["price"] == 0.0114  # kept from the version before
    assert flavors["m5d.large"]["disk"] > 0 and flavors["m5d.large"]["price"] is None
    history = slipway("history", f"examples/catalogs/{AWS}")
    assert [v["version"] for v in history] == [1, 2]  # type: ignore[attr-defined]
