"""How the CLI prints: Rich tables for people, JSON for scripts.

Every command that prints data takes ``--output table|json`` through
:data:`OutputOption` and hands its rows to :func:`emit`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

__all__ = ["OutputFormat", "OutputOption", "console", "emit", "err_console", "warn"]

# Piped output is read by people in logs and CI too: do not squeeze it to 80 columns.
console = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", help="table for people, json for scripts.", case_sensitive=False
    ),
]


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def emit(data: Any, fmt: OutputFormat, render: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON, or through ``render`` for people."""
    if fmt is OutputFormat.JSON:
        sys.stdout.write(json.dumps(data, indent=2, default=_default, ensure_ascii=False) + "\n")
    else:
        render(data)


def warn(messages: Sequence[str]) -> None:
    for message in messages:
        err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
