"""The ``slipway`` command: the Typer app, its sub-apps and the one place
where errors become exit codes."""

from __future__ import annotations

import sys

import typer
from rich.markup import escape

from slipway.entrypoints.cli import catalog as catalog_commands
from slipway.entrypoints.cli import resolve as resolve_commands
from slipway.entrypoints.cli import runs as run_commands
from slipway.entrypoints.cli.context import Invocation
from slipway.entrypoints.cli.doctor import doctor
from slipway.entrypoints.cli.image import image_app
from slipway.entrypoints.cli.imagelist import imagelist_app
from slipway.entrypoints.cli.market import appliance_app, vo_app
from slipway.entrypoints.cli.output import err_console
from slipway.entrypoints.cli.serve import serve
from slipway.entrypoints.cli.sync import subscription_app, sync_app
from slipway.entrypoints.cli.tokens import token_app
from slipway.entrypoints.cli.users import group_app, user_app
from slipway.errors import SlipwayError

__all__ = ["app", "main"]

app = typer.Typer(
    name="slipway",
    help="Define a VM image once, deploy it on any cloud, keep images clean and in sync.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


# Typer reads help texts as Rich markup, where "[env …]" would be a style tag.
@app.callback()
def global_options(
    ctx: typer.Context,
    data_dir: str | None = typer.Option(None, help=escape("Data folder [env SLIPWAY_DATA_DIR].")),
    database_url: str | None = typer.Option(
        None, help=escape("Catalog store URL [env SLIPWAY_DATABASE_URL].")
    ),
    user: str | None = typer.Option(None, help=escape("Act as this user [env SLIPWAY_USER].")),
    queue_url: str | None = typer.Option(
        None, help=escape("Task queue URL [env SLIPWAY_QUEUE_URL].")
    ),
    ssh_public_key: str | None = typer.Option(
        None, help=escape("Your SSH public key file [env SLIPWAY_SSH_PUBLIC_KEY].")
    ),
    worker_threads: str | None = typer.Option(
        None, help=escape("Threads per worker [env SLIPWAY_WORKER_THREADS].")
    ),
    host: str | None = typer.Option(
        None, help=escape("Address serve listens on [env SLIPWAY_HOST].")
    ),
    port: str | None = typer.Option(None, help=escape("Port serve listens on [env SLIPWAY_PORT].")),
    public_url: str | None = typer.Option(
        None, help=escape("The address clients reach serve at [env SLIPWAY_PUBLIC_URL].")
    ),
    ca_dir: str | None = typer.Option(
        None, help=escape("Trusted CAs for image lists over the API [env SLIPWAY_CA_DIR].")
    ),
    fetch_private_addresses: str | None = typer.Option(
        None,
        help=escape(
            "yes: fetch appliance files and subscribed lists from private addresses "
            "[env SLIPWAY_FETCH_PRIVATE_ADDRESSES]."
        ),
    ),
    login_failures: str | None = typer.Option(
        None, help=escape("Wrong passwords before an account waits [env SLIPWAY_LOGIN_FAILURES].")
    ),
    login_window: str | None = typer.Option(
        None, help=escape("Seconds wrong passwords are counted over [env SLIPWAY_LOGIN_WINDOW].")
    ),
    login_lockout: str | None = typer.Option(
        None, help=escape("Seconds a locked account waits [env SLIPWAY_LOGIN_LOCKOUT].")
    ),
    login_per_address: str | None = typer.Option(
        None,
        help=escape("Log-ins per minute from one address [env SLIPWAY_LOGIN_PER_ADDRESS]."),
    ),
) -> None:
    """Define a VM image once, deploy it on any cloud, keep images clean and in sync."""
    ctx.obj = Invocation(
        {
            "data_dir": data_dir,
            "database_url": database_url,
            "user": user,
            "queue_url": queue_url,
            "ssh_public_key": ssh_public_key,
            "worker_threads": worker_threads,
            "host": host,
            "port": port,
            "public_url": public_url,
            "ca_dir": ca_dir,
            "fetch_private_addresses": fetch_private_addresses,
            "login_failures": login_failures,
            "login_window": login_window,
            "login_lockout": login_lockout,
            "login_per_address": login_per_address,
        }
    )


catalog_commands.register(app)
resolve_commands.register(app)
run_commands.register(app)
app.add_typer(image_app, name="image")
app.add_typer(imagelist_app, name="imagelist")
app.add_typer(appliance_app, name="appliance")
app.add_typer(vo_app, name="vo")
app.add_typer(subscription_app, name="subscription")
app.add_typer(sync_app, name="sync")
app.add_typer(user_app, name="user")
app.add_typer(group_app, name="group")
app.add_typer(token_app, name="token")
app.command("serve")(serve)
app.command("doctor")(doctor)

# Sub-modules add their commands to the apps above when imported.
from slipway.entrypoints.cli import image_inspect, image_test, sizes_refresh  # noqa: E402,F401


def main() -> None:
    """Console-script entry: run the app and map errors to exit codes."""
    try:
        code = app(standalone_mode=False)
    except SlipwayError as exc:
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        if exc.hint:
            err_console.print(f"[dim]hint:[/] {escape(exc.hint)}", soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: exit 2, with the usage line
        show = getattr(exc, "show", None)
        if show is not None:
            show()
        else:
            err_console.print(f"error: {exc}")
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)
