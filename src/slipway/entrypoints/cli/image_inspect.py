"""``slipway image check`` and ``slipway image sanitise``.

Exit status of ``check``: 0 when no finding is an error, 1 when one is, 2 when
the arguments are unusable (no such file, a directory), 7 when a tool is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from slipway.entrypoints.cli.image import image_app
from slipway.entrypoints.cli.output import OutputFormat, OutputOption, console, emit

__all__ = ["image_app"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "dim"}

ImageArgument = Annotated[
    Path, typer.Argument(help="Image file: qcow2, raw, VMDK or OVA.", show_default=False)
]


@image_app.command("check")
def check(image: ImageArgument, output: OutputOption = OutputFormat.TABLE) -> None:
    """Check an image against the cloud image guidelines, without booting or changing it.

    Exit status: 0 when no finding is an error, 1 when one is, 2 when IMAGE is not
    a readable file. Findings and ids: docs/image-check.md.
    """
    from slipway.imagekit.check import check_image

    report = check_image(image)
    emit(report.to_dict(), output, _render_report)
    raise typer.Exit(1 if report.has_errors else 0)


def _render_report(data: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    size = data.get("virtual_size")
    console.print(
        f"[bold]{data['path']}[/]: {data.get('format') or 'unknown format'}"
        + (f", virtual {_human(size)}, file {_human(data.get('actual_size'))}" if size else "")
        + f" — checked in {data['seconds']:.2f} s"
    )
    findings = data["findings"]
    if not findings:
        console.print("[green]no findings[/]")
        return
    table = Table(show_lines=True, pad_edge=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("id", no_wrap=True)
    table.add_column("finding, evidence and fix", overflow="fold")
    for f in findings:
        evidence = " ".join(f"{k}={v}" for k, v in f["evidence"].items() if v is not None)
        text = (
            f"{escape(f['detail'])}\n[dim]{escape(evidence)}[/]\n[cyan]fix:[/] {escape(f['fix'])}"
        )
        table.add_row(f"[{_STYLE[f['severity']]}]{f['severity']}[/]", f["id"], text)
    console.print(table)
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in _STYLE}
    console.print(", ".join(f"{n} {s}{'s' if n != 1 else ''}" for s, n in counts.items()))


def _human(size: Any) -> str:
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


@image_app.command("sanitise")
def sanitise(
    image: ImageArgument,
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Where to write the sanitised image.")
    ] = None,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Change IMAGE itself instead of writing --out.")
    ] = False,
    report: Annotated[
        OutputFormat,
        typer.Option("--report", help="table for people, json for scripts.", case_sensitive=False),
    ] = OutputFormat.TABLE,
) -> None:
    """Remove what check marks as removable: SSH host keys, shell histories, machine-id,
    cloud-init state, logs and authorized_keys. The input is untouched unless --in-place.
    """
    from slipway.errors import InputError
    from slipway.imagekit.sanitise import sanitise_image

    if (out is None) == (not in_place):
        raise InputError(
            "give either -o OUT or --in-place", hint="slipway image sanitise IMAGE -o CLEAN.qcow2"
        )
    result = sanitise_image(image, out, in_place=in_place)
    emit(result.to_dict(), report, _render_sanitised)


def _render_sanitised(data: dict[str, Any]) -> None:
    from rich.markup import escape

    for item in data["removed"]:
        console.print(f"[green]{item['action']}[/] {escape(item['path'])} [dim]({item['rule']})[/]")
    console.print(f"wrote {data['output']} ({len(data['removed'])} changes)")
    remaining = data.get("remaining") or []
    if remaining:
        console.print(f"[yellow]still found:[/] {', '.join(remaining)}")
