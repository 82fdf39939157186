"""``slipway serve``: the REST API and the dashboard in one process."""

from __future__ import annotations

from typing import Annotated

import typer

from slipway.config import load_settings
from slipway.entrypoints.cli.context import Invocation
from slipway.entrypoints.cli.output import console, escape

__all__ = ["serve"]


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help=escape("Listen address [env SLIPWAY_HOST]."))
    ] = None,
    port: Annotated[
        str | None, typer.Option(help=escape("Listen port [env SLIPWAY_PORT]."))
    ] = None,
) -> None:
    """Serve the REST API (/api, OpenAPI at /openapi.json) and the dashboard."""
    import uvicorn

    from slipway.bootstrap import web_services
    from slipway.entrypoints.api.app import create_app
    from slipway.services.identity import FIRST_ADMIN

    root = ctx.find_root().obj
    overrides = dict(root.overrides) if isinstance(root, Invocation) else {}
    settings = load_settings(
        overrides={
            **overrides,
            "host": host or overrides.get("host"),
            "port": port or overrides.get("port"),
        }
    )
    port_number = settings.port_number
    services = web_services(settings)
    services.catalog(settings.user).refresh_index()
    password = services.identity.ensure_first_admin()
    shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
    url = f"http://{shown}:{port_number}"
    console.print(f"Slipway is serving on [bold]{url}/[/] — log in at {url}/login")
    console.print(f"REST API: {url}/api (OpenAPI at {url}/openapi.json)")
    if password is not None:
        console.print(
            f"First start: created the admin [bold]{FIRST_ADMIN}[/] with password "
            f"[bold]{password}[/]\n(shown only now; change it with: "
            f"slipway user password {FIRST_ADMIN})"
        )
    from slipway.bootstrap import runtime
    from slipway.entrypoints.worker import EmbeddedWorker

    # One process: the API, the dashboard, the workers that move runs along, and syncs.
    with EmbeddedWorker(runtime(settings), threads=int(settings.worker_threads), syncs=True):
        uvicorn.run(create_app(services), host=settings.host, port=port_number, log_level="info")
