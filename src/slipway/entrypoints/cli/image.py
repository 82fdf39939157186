"""``slipway image …``: build, convert, compact and the local image store."""

from __future__ import annotations

import typer

__all__ = ["image_app"]

image_app = typer.Typer(
    help="Build, check, sanitise, compact, convert and store VM images.", no_args_is_help=True
)
