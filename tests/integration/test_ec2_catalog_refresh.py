"""``slipway sizes refresh --cloud C`` against moto: the cloud's instance types
become a new version of its catalog, through the real command."""

from __future__ import annotations

from pathlib import Path

from tests.integration.ec2_proxy import Ec2Proxy
from tests.integration.ec2_world import AWS
from tests.integration.operator_cli import operator_cli


def test_refresh_saves_the_instance_types_as_a_new_catalog_version(
    tmp_path: Path, ec2_proxy: Ec2Proxy
) -> None:
    slipway = operator_cli(tmp_path, f'[clouds.{AWS}]\nendpoint_url = "{ec2_proxy.url}"\n')

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
