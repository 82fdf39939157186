"""Catalog commands: validate, import, images list, show, history, diff, copy, share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from slipway.domain.modules import Kind, ModuleVersion, Right, Rights, parse_rights
from slipway.entrypoints.cli.context import catalog
from slipway.entrypoints.cli.output import (
    DataTable,
    OutputFormat,
    OutputOption,
    console,
    emit,
    escape,
    styled,
    warn,
)
from slipway.errors import InputError

__all__ = ["register"]

Paths = Annotated[list[Path], typer.Argument(help="Definition files or folders.")]
Root = Annotated[
    Path | None,
    typer.Option(
        "--root", help=escape("Folder module names are relative to [default: current folder].")
    ),
]


def _load(paths: list[Path], root: Path | None) -> list[Any]:
    from slipway.adapters.definitions.loader import load_paths

    return load_paths(paths, root or Path.cwd())


def _version_json(version: ModuleVersion, *, document: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": version.name,
        "kind": version.kind.value,
        "version": version.version,
        "author": version.author,
        "created_at": version.created_at,
        "owner": version.rights.owner,
        "group": version.rights.group,
        "group_rights": sorted(version.rights.group_rights),
        "public_rights": sorted(version.rights.public_rights),
        "copied_from": version.copied_from,
        "comment": version.comment,
        "source": version.source,
    }
    if document:
        data["document"] = version.document
    return data


def validate_cmd(
    ctx: typer.Context, paths: Paths, root: Root = None, output: OutputOption = OutputFormat.TABLE
) -> None:
    """Check definition files: format, references, clouds, sizes, security groups."""
    files = _load(paths, root)
    report = catalog(ctx).validate(files)
    report.raise_errors()

    def render(_: Any) -> None:
        warn(report.warnings)
        console.print(f"[green]✓[/] {len(files)} definitions are valid")

    emit({"valid": [f.name for f in files], "warnings": report.warnings}, output, render)


def import_cmd(
    ctx: typer.Context,
    paths: Paths,
    root: Root = None,
    comment: Annotated[str, typer.Option(help="Saved with each new version.")] = "",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Import definitions into the catalog: all of them, or none if any is wrong."""
    result = catalog(ctx).import_files(_load(paths, root), comment)
    rows: list[dict[str, Any]] = [
        {"name": s.name, "kind": s.kind.value, "version": s.version, "status": s.status}
        for s in result.saved
    ]

    def render(_: Any) -> None:
        warn(result.warnings)
        table = DataTable("module", "kind", "version", "status", box=None)
        for row in rows:
            style = {"new": "green", "updated": "cyan"}.get(row["status"], "dim")
            table.add_row(
                row["name"], row["kind"], str(row["version"]), styled(row["status"], style)
            )
        console.print(table)
        changed = sum(r["status"] != "unchanged" for r in rows)
        console.print(f"{changed} saved, {len(rows) - changed} unchanged")

    emit({"modules": rows, "warnings": result.warnings}, output, render)


images_app = typer.Typer(help="List images and components in the catalog.", no_args_is_help=True)


@images_app.command("list")
def images_list(
    ctx: typer.Context,
    cloud: Annotated[str | None, typer.Option(help="Only those with a native image here.")] = None,
    kind: Annotated[str, typer.Option(help="image, component or all.")] = "all",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Images and components you can see, with the clouds they can run on."""
    kinds = {
        "image": (Kind.IMAGE,),
        "component": (Kind.COMPONENT,),
        "all": (Kind.IMAGE, Kind.COMPONENT),
    }
    if kind not in kinds:
        raise InputError(f"--kind must be image, component or all, not {kind!r}")
    rows = catalog(ctx).list_modules(kinds=kinds[kind], cloud=cloud)
    data: list[dict[str, Any]] = [
        {
            "name": v.name,
            "kind": v.kind.value,
            "version": v.version,
            "owner": v.rights.owner,
            "description": v.document.get("description", ""),
            "clouds": clouds,
        }
        for v, clouds in rows
    ]

    def render(_: Any) -> None:
        table = DataTable("name", "kind", "version", "owner", "clouds", "description", box=None)
        for row in data:
            table.add_row(
                row["name"],
                row["kind"],
                str(row["version"]),
                row["owner"],
                ", ".join(row["clouds"]),
                row["description"],
            )
        console.print(table)

    emit(data, output, render)


def history_cmd(ctx: typer.Context, name: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """Every saved version of a module, oldest first."""
    versions = catalog(ctx).history(name)
    data = [_version_json(v, document=False) for v in versions]

    def render(_: Any) -> None:
        table = DataTable("version", "saved", "author", "comment", box=None)
        for v in versions:
            table.add_row(
                str(v.version),
                v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                v.author,
                v.comment or (f"copy of {v.copied_from}" if v.copied_from else ""),
            )
        console.print(table)

    emit(data, output, render)


def diff_cmd(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="NAME@A")],
    new: Annotated[str, typer.Argument(help="NAME@B (or NAME for the latest)")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """What changed between two versions, key by key."""
    before, after, changes = catalog(ctx).diff(old, new)
    data = {
        "old": before.label,
        "new": after.label,
        "changes": [
            {"path": c.path, "action": c.action, "old": c.old, "new": c.new} for c in changes
        ],
    }

    def render(_: Any) -> None:
        console.print(f"[bold]{before.label} → {after.label}[/]")
        if not changes:
            console.print("no differences")
        for change in changes:
            if change.old is not None:
                console.print(styled(f"- {change.path}: {_inline(change.old)}", "red"))
            if change.new is not None:
                console.print(styled(f"+ {change.path}: {_inline(change.new)}", "green"))

    emit(data, output, render)


def _inline(value: Any) -> str:
    return (
        yaml.safe_dump(value, default_flow_style=True, width=1000)
        .strip()
        .removesuffix("...")
        .strip()
    )


def copy_cmd(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(help="Module to copy (NAME or NAME@N).")],
    destination: Annotated[str, typer.Argument(help="Name of the copy, yours.")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Copy a module you can view into a module you own (private, parent kept)."""
    copied = catalog(ctx).copy(source, destination)
    emit(
        _version_json(copied),
        output,
        lambda _: console.print(f"copied {escape(str(copied.copied_from))} to {copied.label}"),
    )


def share_cmd(
    ctx: typer.Context,
    name: str,
    group: Annotated[str | None, typer.Option(help="Group to grant rights to.")] = None,
    group_rights: Annotated[str, typer.Option(help="view,edit,deploy for the group.")] = "view",
    public: Annotated[str, typer.Option(help="view,edit,deploy for everyone, or none.")] = "none",
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Set who else may view, edit or deploy a module you own."""
    granted_group, granted_public = parse_share(group_rights, public)
    rights = catalog(ctx).share(
        name, group=group, group_rights=granted_group, public_rights=granted_public
    )
    emit_rights(name, rights, output)


def parse_share(group_rights: str, public: str) -> tuple[frozenset[Right], frozenset[Right]]:
    """``--group-rights`` and ``--public`` as sets of rights; bad words are input errors."""
    try:
        return parse_rights(group_rights), parse_rights(public)
    except ValueError as exc:
        raise InputError(str(exc)) from None


def emit_rights(name: str, rights: Rights, output: OutputFormat) -> None:
    """What ``share`` set, for people or scripts."""
    data = {
        "name": name,
        "owner": rights.owner,
        "group": rights.group,
        "group_rights": sorted(rights.group_rights),
        "public_rights": sorted(rights.public_rights),
    }
    emit(
        data,
        output,
        lambda _: console.print(
            escape(
                f"{name}: owner {rights.owner}; group {rights.group or '-'} "
                f"{','.join(sorted(rights.group_rights)) or '-'}; "
                f"public {','.join(sorted(rights.public_rights)) or '-'}"
            )
        ),
    )


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_cmd)
    app.command("import")(import_cmd)
    app.add_typer(images_app, name="images")
    app.command("history")(history_cmd)
    app.command("diff")(diff_cmd)
    app.command("copy")(copy_cmd)
    app.command("share")(share_cmd)
