"""``slipway doctor``: is this host ready for the main job?"""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape
from rich.table import Table

from slipway.bootstrap import host_checks
from slipway.entrypoints.cli.context import settings
from slipway.entrypoints.cli.output import OutputFormat, OutputOption, console, emit, err_console

__all__ = ["doctor"]

_STYLE = {"ok": "green", "warning": "yellow", "error": "red"}


def doctor(ctx: typer.Context, output: OutputOption = OutputFormat.TABLE) -> None:
    """Check the host: QEMU, the accelerator (tried now), the image kit's tools,
    free space, the database and queue, the base image. Exit 1 when something
    blocks building and deploying on the local cloud."""
    results = []
    for label, check in host_checks(settings(ctx)):
        with err_console.status(f"checking {label}"):
            results.extend(check())
    data: list[dict[str, Any]] = [r.as_dict() for r in results]

    def render(_: Any) -> None:
        table = Table("", "check", "detail", "hint", box=None)
        for row in data:
            style = _STYLE[row["status"]]
            table.add_row(
                f"[{style}]{row['status']}[/]",
                escape(row["check"]),
                escape(row["detail"]),
                escape(row["hint"]),
            )
        console.print(table)

    emit(data, output, render)
    errors = [r for r in data if r["status"] == "error"]
    if errors:
        err_console.print(
            f"[red]{len(errors)} problem(s) block the main job:[/] "
            + escape(", ".join(r["check"] for r in errors))
        )
        raise typer.Exit(1)
