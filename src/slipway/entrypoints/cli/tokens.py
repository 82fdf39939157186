"""``slipway token create|list|revoke`` and ``slipway user password``."""

from __future__ import annotations

import secrets
import sys
from typing import Annotated, Any

import typer

from slipway.entrypoints.cli.context import identity, settings
from slipway.entrypoints.cli.output import (
    DataTable,
    OutputFormat,
    OutputOption,
    console,
    emit,
    escape,
)
from slipway.entrypoints.cli.users import user_app
from slipway.errors import InputError
from slipway.services.ports import TokenRecord

__all__ = ["token_app"]

token_app = typer.Typer(help="API tokens for the REST API.", no_args_is_help=True)


def _token_json(record: TokenRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name,
        "user": record.user,
        "created_at": record.created_at,
    }


@token_app.command("create")
def token_create(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Create an API token for the acting user; it is shown once, only its hash is kept."""
    made = identity(ctx).create_token(settings(ctx).user, name)
    record = made.record

    def render(_: Any) -> None:
        console.print(f"token {record.id} ({escape(record.name)}) for {escape(record.user)}:")
        console.print(made.token, soft_wrap=True, highlight=False, markup=False)
        console.print("[dim]shown only now; send it as 'Authorization: Bearer <token>'[/]")

    emit(_token_json(record) | {"token": made.token}, output, render)


@token_app.command("list")
def token_list(ctx: typer.Context, output: OutputOption = OutputFormat.TABLE) -> None:
    """The acting user's tokens (names and dates; the tokens themselves are not kept)."""
    tokens = identity(ctx).tokens(settings(ctx).user)

    def render(_: Any) -> None:
        table = DataTable("id", "name", "created", box=None)
        for token in tokens:
            table.add_row(str(token.id), token.name, f"{token.created_at:%Y-%m-%d %H:%M}")
        console.print(table)

    emit([_token_json(t) for t in tokens], output, render)


@token_app.command("revoke")
def token_revoke(
    ctx: typer.Context,
    token_id: Annotated[int, typer.Argument(min=1, max=2**31 - 1)],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Revoke one of the acting user's tokens."""
    identity(ctx).revoke_token(settings(ctx).user, token_id)
    emit({"revoked": token_id}, output, lambda _: console.print(f"revoked token {token_id}"))


@user_app.command("password")
def user_password(
    ctx: typer.Context,
    name: str,
    stdin: Annotated[bool, typer.Option("--stdin", help="Read the password from stdin.")] = False,
    generate: Annotated[
        bool, typer.Option("--generate", help="Make a random one and print it.")
    ] = False,
) -> None:
    """Set a user's password for the dashboard (the user themself or an admin)."""
    if stdin and generate:
        raise InputError("--stdin and --generate exclude each other")
    if generate:
        password = secrets.token_urlsafe(12)
    elif stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    identity(ctx).set_password(settings(ctx).user, name, password)
    console.print(f"set the password of {name}" + (f": {password}" if generate else ""))
