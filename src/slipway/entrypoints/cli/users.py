"""``slipway user add`` and ``slipway group add``."""

from __future__ import annotations

from typing import Annotated

import typer

from slipway.entrypoints.cli.context import identity, settings
from slipway.entrypoints.cli.output import console, escape

__all__ = ["group_app", "user_app"]

user_app = typer.Typer(help="Users of the catalog.", no_args_is_help=True)
group_app = typer.Typer(help="Groups of users, for sharing modules.", no_args_is_help=True)


@user_app.command("add")
def user_add(
    ctx: typer.Context,
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="Make an admin.")] = False,
    group: Annotated[list[str] | None, typer.Option(help="Add to this group.")] = None,
) -> None:
    """Add a user (admins only; the first user of a store is its admin)."""
    identity(ctx).add_user(settings(ctx).user, name, admin=admin, groups=group or [])
    console.print(f"added user {escape(name)}")


@group_app.command("add")
def group_add(
    ctx: typer.Context,
    name: str,
    member: Annotated[list[str] | None, typer.Option(help="A member (repeatable).")] = None,
    editor: Annotated[
        list[str] | None,
        typer.Option(help="A member who also creates modules under NAME/ (repeatable)."),
    ] = None,
) -> None:
    """Add a group (admins only). Its editors create modules in its namespace."""
    identity(ctx).add_group(settings(ctx).user, name, member or [], editor or [])
    console.print(f"added group {escape(name)}")
