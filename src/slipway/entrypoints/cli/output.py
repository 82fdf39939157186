"""How the CLI prints: Rich tables for people, JSON for scripts.

Every command that prints data takes ``--output table|json`` through
:data:`OutputOption` and hands its rows to :func:`emit`.

Much of what is printed was written by other people (descriptions, flavor
and group names, a cloud's or a guest's messages), so neither of Rich's two
languages may reach the terminal from it: control characters, which the
terminal obeys, are shown as escapes (``\\x1b``) in every string the consoles
print; Rich markup (``[red]``) is read only in the commands' own text — cells
of a :class:`DataTable` are shown as they are, and text put into a markup
string goes through :func:`escape`.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Annotated, Any

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.style import StyleType
from rich.table import Table
from rich.text import Text

from slipway.domain.text import printable

__all__ = [
    "DataTable",
    "OutputFormat",
    "OutputOption",
    "console",
    "emit",
    "err_console",
    "escape",
    "styled",
    "warn",
]


class _Console(Console):
    """A console that shows control characters in any string it prints as
    escapes; Rich's own styling is added later and is not affected."""

    def render_str(self, text: str, *args: Any, **kwargs: Any) -> Text:
        return super().render_str(printable(text), *args, **kwargs)


# Piped output is read by people in logs and CI too: do not squeeze it to 80 columns.
console = _Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err_console = _Console(stderr=True, highlight=False)


def styled(value: object, style: StyleType) -> Text:
    """``value`` in ``style``, shown as it is (no markup, control characters escaped)."""
    return Text(printable(str(value)), style=style)


class DataTable(Table):
    """A Rich table whose text cells are shown as they are: a description
    holding ``[red]`` prints those five characters. Headers are markup."""

    def add_row(
        self,
        *renderables: RenderableType | None,
        style: StyleType | None = None,
        end_section: bool = False,
    ) -> None:
        cells = [Text(printable(r)) if isinstance(r, str) else r for r in renderables]
        super().add_row(*cells, style=style, end_section=end_section)


class OutputFormat(StrEnum):
    TABLE = "table"
    JSON = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output", "-o", help="table for people, json for scripts.", case_sensitive=False
    ),
]


_C1_ESCAPES = {code: f"\\u{code:04x}" for code in range(0x7F, 0xA0)}


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def emit(data: Any, fmt: OutputFormat, render: Callable[[Any], None]) -> None:
    """Print ``data`` as JSON, or through ``render`` for people."""
    if fmt is OutputFormat.JSON:
        text = json.dumps(data, indent=2, default=_default, ensure_ascii=False)
        # JSON escapes C0 controls itself; C1 ones (CSI is U+009B) too, here.
        sys.stdout.write(text.translate(_C1_ESCAPES) + "\n")
    else:
        render(data)


def warn(messages: Sequence[str]) -> None:
    for message in messages:
        err_console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)
