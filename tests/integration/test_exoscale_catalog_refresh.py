"""``slipway sizes refresh`` for an Exoscale cloud, through the real command,
against the fake v2 API: the zone's instance types become the next version of
the shared Exoscale catalog, under the names definitions already use."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.exoscale_fake import FakeExoscale
from tests.integration.operator_cli import operator_cli

GVA = "exoscale-ch-gva"
CATALOG = "examples/catalogs/exoscale-2015"


@pytest.fixture
def fake() -> Iterator[FakeExoscale]:
    fake = FakeExoscale().start()
    yield fake
    fake.stop()


def test_refresh_keeps_the_names_definitions_use(tmp_path: Path, fake: FakeExoscale) -> None:
    slipway = operator_cli(
        tmp_path,
        f'[clouds.{GVA}]\nendpoint = "{fake.endpoint}"\n'
        f'api_key = "{fake.key}"\napi_secret = "{fake.secret}"\npoll_interval = 0.02\n',
    )

    slipway("import", "examples")
    refreshed = slipway("sizes", "refresh", "--cloud", GVA)
    assert refreshed == {"cloud": GVA, "catalog": CATALOG, "version": 2,
                         "status": "updated", "flavors": 9}  # fmt: skip
    flavors = {f["name"]: f for f in slipway("sizes", "list", "--cloud", GVA)}  # type: ignore[attr-defined]
    assert (flavors["Medium"]["cpu"], flavors["Medium"]["ram"]) == (2, 4.0)
    assert "Mega" in flavors and "gpu.small" not in flavors
    resolved = slipway("sizes", "resolve", "examples/images/ubuntu-22.04")
    rows = {r["cloud"]: r["flavor"] for r in resolved["clouds"]}  # type: ignore[index]
    assert rows[GVA]["name"] == "Small" and rows[GVA]["explicit"]  # still in the catalog
    assert fake.requests["list-instance-types"] == 1
