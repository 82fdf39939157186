"""The ``slipway`` command: the Typer app, its sub-apps and the one place
where errors become exit codes."""

from __future__ import annotations

import sys

import typer

from slipway.entrypoints.cli.image import image_app
from slipway.entrypoints.cli.output import err_console
from slipway.errors import SlipwayError

__all__ = ["app", "main"]

app = typer.Typer(
    name="slipway",
    help="Define a VM image once, deploy it on any cloud, keep images clean and in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(image_app, name="image")

# Sub-modules add their commands to the apps above when imported.
from slipway.entrypoints.cli import image_inspect  # noqa: E402,F401


def main() -> None:
    """Console-script entry: run the app and map errors to exit codes."""
    try:
        code = app(standalone_mode=False)
    except SlipwayError as exc:
        err_console.print(f"[bold red]error:[/] {exc.message}", markup=True, soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {exc.hint}", markup=True, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as exc:  # click usage errors carry their own exit code
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
        raise
    sys.exit(code if isinstance(code, int) else 0)
