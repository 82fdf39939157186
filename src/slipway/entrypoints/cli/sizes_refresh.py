"""``slipway sizes refresh --cloud C``: the cloud's catalog, from its own API.

An explicit command, never part of a deploy: it asks the cloud's connector for
what the cloud sells now (EC2: ``describe_instance_types``) and saves it as a
new version of the cloud's catalog module.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from slipway.entrypoints.cli.context import catalog, settings
from slipway.entrypoints.cli.output import OutputFormat, OutputOption, console, emit
from slipway.entrypoints.cli.resolve import sizes_app

__all__ = ["sizes_refresh"]


@sizes_app.command("refresh")
def sizes_refresh(
    ctx: typer.Context,
    cloud: Annotated[str, typer.Option(help="The cloud whose catalog to refresh.")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Ask the cloud what it sells now; save it as a new version of its catalog."""
    from slipway.bootstrap import Connectors
    from slipway.connectors.base import require
    from slipway.domain.machines import Capability

    service = catalog(ctx)
    connector = Connectors(settings(ctx), service)(cloud)
    require(connector, Capability.FLAVOR_LISTING)
    flavors = connector.flavors()
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    source = f"the {cloud} cloud's own list of flavors, refreshed on {today}"
    saved = service.refresh_catalog(cloud, flavors, source)
    data: dict[str, Any] = {
        "cloud": cloud,
        "catalog": saved.name,
        "version": saved.version,
        "status": saved.status,
        "flavors": len(flavors),
    }

    def render(_: Any) -> None:
        verb = {"unchanged": "is unchanged at"}.get(saved.status, "saved as")
        console.print(
            f"{saved.name} {verb} version {saved.version} ({len(flavors)} flavors from {cloud})",
            highlight=False,
        )

    emit(data, output, render)
