"""Commands that show what a definition becomes: show, sizes, clouds."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml

from slipway.bootstrap import cloud_details
from slipway.domain.modules import MAX_VERSION, Kind, ModuleRef
from slipway.domain.sizes import FlavorPick, Size, sorted_flavors
from slipway.entrypoints.cli.catalog import _version_json
from slipway.entrypoints.cli.context import catalog, settings
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
from slipway.services.resolve import ResolvedDefinition

__all__ = ["register"]


def _flavor_json(pick: FlavorPick | None) -> dict[str, Any] | None:
    if pick is None:
        return None
    f = pick.flavor
    return {
        "name": f.name,
        "cpu": f.cpu,
        "ram": f.ram,
        "disk": f.disk,
        "price": f.price,
        "explicit": pick.explicit,
        "warnings": list(pick.warnings),
    }


def _resolved_json(result: ResolvedDefinition) -> dict[str, Any]:
    return {
        "name": result.module.label,
        "kind": result.module.kind.value,
        "document": result.document,
        "origin": result.resolved.origin,
        "hierarchy": [link.label for link in result.resolved.chain],
        "clouds": {
            name: {
                "native_id": t.native_id,
                "synced": None
                if t.synced is None
                else {
                    "subscription": t.synced.subscription,
                    "list_version": t.synced.list_version,
                    "version": t.synced.version,
                    "synced_at": t.synced.synced_at,
                    "state": t.synced.state.value,
                },
                "login_user": t.login_user,
                "instance_type": t.instance_type,
                "flavor": _flavor_json(t.pick),
                "problem": t.problem,
                "security_groups": [
                    {
                        "group": g.group,
                        "on_cloud": g.on_cloud,
                        "declared_by": g.declared_by,
                        "action": g.action.value,
                        "warning": g.warning,
                    }
                    for g in t.groups
                ],
            }
            for name, t in result.targets.items()
        },
        "warnings": result.warnings,
    }


def _render_resolved(result: ResolvedDefinition) -> None:
    console.print(
        f"[bold]{result.module.label}[/] ({result.module.kind}) — hierarchy: "
        + escape(" → ".join(link.label for link in result.resolved.chain))
    )
    table = DataTable("key", "value", "from", box=None)
    origin = result.resolved.origin
    flat = _flatten(result.document)
    for path, value in flat.items():
        source = origin.get(path) or next(
            (origin[p] for p in sorted(origin, key=len, reverse=True) if path.startswith(p + ".")),
            "",
        )
        style = "" if source == result.module.label else "dim"
        text = yaml.safe_dump(value, default_flow_style=True, width=1000).strip()
        table.add_row(path, text.removesuffix("...").strip(), styled(source, style))
    console.print(table)
    clouds = DataTable("cloud", "native image", "login", "flavor", "security groups", box=None)
    for name, t in result.targets.items():
        flavor = (
            f"{t.pick.flavor.describe()}{' (explicit)' if t.pick.explicit else ''}"
            if t.pick
            else styled(t.problem, "red")
        )
        groups = ", ".join(
            f"{g.group} ({g.action}"
            + (f" as {g.on_cloud}" if g.on_cloud and g.on_cloud != g.group else "")
            + ")"
            for g in t.groups
        )
        native = t.native_id
        if t.synced is not None:
            native += (
                f" (synced by {t.synced.subscription} from list version "
                f"{t.synced.list_version}, appliance version {t.synced.version}, "
                f"{t.synced.synced_at:%Y-%m-%d %H:%M} UTC)"
                if t.synced.synced_at
                else f" (synced by {t.synced.subscription})"
            )
        clouds.add_row(name, native, t.login_user or "", flavor, groups)
    console.print(clouds)
    warn(result.warnings)


def _flatten(document: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in document.items():
        if (isinstance(value, dict) and value and key in ("size", "os", "native", "clouds")) or (
            prefix.startswith("clouds.") and isinstance(value, dict)
        ):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def show_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Module name, or NAME@N for a version.")],
    resolved: Annotated[
        bool,
        typer.Option(
            "--resolved", help="The effective definition, with where each value came from."
        ),
    ] = False,
    version: Annotated[
        int | None, typer.Option(help="Show this version.", min=1, max=MAX_VERSION)
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Print a module as saved, or resolved through its parents."""
    if version is not None:
        try:
            ref = ModuleRef.parse(name)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        if ref.version is not None and ref.version != version:
            raise InputError(f"{name} and --version {version} disagree")
        name = f"{ref.name}@{version}"
    service = catalog(ctx)
    if resolved:
        kind = service.show(name).kind
        if kind not in (Kind.IMAGE, Kind.COMPONENT):
            raise InputError(f"{name} is a {kind}; --resolved applies to images and components")
        result = service.resolve(name)
        emit(_resolved_json(result), output, lambda _: _render_resolved(result))
        return
    saved = service.show(name)

    def render(_: Any) -> None:
        console.print(
            f"# {saved.label} — {saved.kind}, owner {saved.rights.owner}, "
            f"saved {saved.created_at:%Y-%m-%d %H:%M} by {saved.author}",
            style="dim",
            markup=False,
        )
        console.print(yaml.safe_dump(saved.document, sort_keys=False).rstrip(), markup=False)

    emit(_version_json(saved), output, render)


sizes_app = typer.Typer(
    help="Flavors per cloud, and what a size resolves to.", no_args_is_help=True
)


@sizes_app.command("list")
def sizes_list(
    ctx: typer.Context,
    cloud: Annotated[str, typer.Option(help="The cloud whose catalog to list.")],
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """The flavors a cloud sells, smallest first."""
    found, cat = catalog(ctx).flavors(cloud)
    data: list[dict[str, Any]] = [
        {"name": f.name, "cpu": f.cpu, "ram": f.ram, "disk": f.disk, "price": f.price}
        for f in sorted_flavors(cat.flavors)
    ]

    def render(_: Any) -> None:
        console.print(f"[bold]{found.name}[/] — catalog {escape(cat.name)}", highlight=False)
        table = DataTable("flavor", "CPU", "RAM (GB)", "disk (GB)", "price/h", box=None)
        for f in data:
            table.add_row(
                f["name"],
                str(f["cpu"]),
                f"{f['ram']:g}",
                "-" if f["disk"] is None else f"{f['disk']:g}",
                "-" if f["price"] is None else f"{f['price']:g}",
            )
        console.print(table)

    emit(data, output, render)


@sizes_app.command("resolve")
def sizes_resolve(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="An image or component to resolve.")] = None,
    cpu: Annotated[int | None, typer.Option(help="CPU count.")] = None,
    ram: Annotated[float | None, typer.Option(help="RAM in GB.")] = None,
    disk: Annotated[float | None, typer.Option(help="Disk in GB.")] = None,
    cloud: Annotated[list[str] | None, typer.Option(help="Only these clouds (repeatable).")] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """The flavor a size (or a definition's size) resolves to on every cloud."""
    service = catalog(ctx)
    if name is not None:
        if any(v is not None for v in (cpu, ram, disk)):
            raise InputError("give either NAME or --cpu/--ram/--disk, not both")
        result = service.resolve(name, clouds=cloud)
        rows: list[dict[str, Any]] = [
            {
                "cloud": n,
                "catalog": t.cloud.catalog,
                "flavor": _flavor_json(t.pick),
                "problem": t.problem,
            }
            for n, t in result.targets.items()
        ]
        size = result.size
        warnings = [w for t in result.targets.values() if t.pick for w in t.pick.warnings]
    else:
        if all(v is None for v in (cpu, ram, disk)):
            raise InputError("give a size (--cpu, --ram, --disk) or a definition NAME")
        size = Size(cpu, ram, disk)
        table_rows = service.size_table(size, cloud)
        rows = [
            {
                "cloud": r.cloud.name,
                "catalog": r.catalog,
                "flavor": _flavor_json(r.pick),
                "problem": r.problem,
            }
            for r in table_rows
        ]
        warnings = []

    def render(_: Any) -> None:
        console.print(f"size: {size}")
        table = DataTable("cloud", "flavor", "CPU", "RAM (GB)", "price/h", box=None)
        for row in rows:
            f = row["flavor"]
            if f is None:
                table.add_row(row["cloud"], styled(row["problem"], "red"), "", "", "")
            else:
                table.add_row(
                    row["cloud"],
                    f["name"] + (" (explicit)" if f["explicit"] else ""),
                    str(f["cpu"]),
                    f"{f['ram']:g}",
                    "-" if f["price"] is None else f"{f['price']:g}",
                )
        console.print(table)
        warn(warnings)

    emit(
        {"size": {"cpu": size.cpu, "ram": size.ram, "disk": size.disk}, "clouds": rows},
        output,
        render,
    )
    if any(row["flavor"] is None for row in rows):
        raise typer.Exit(1)


clouds_app = typer.Typer(help="The clouds Slipway knows.", no_args_is_help=True)


@clouds_app.command("list")
def clouds_list(ctx: typer.Context, output: OutputOption = OutputFormat.TABLE) -> None:
    """Every cloud with its driver, whether this server can use it (and why
    not), region, capabilities (what the driver can do, never more than the
    definition allows) and catalog; for a local cloud, the accelerator and
    why it was chosen."""
    details = cloud_details(settings(ctx))
    data: list[dict[str, Any]] = [
        {
            "name": c.name,
            "driver": c.driver,
            "region": c.region,
            "security_groups": c.security_groups,
            "image_upload": c.image_upload,
            "catalog": cat.name,
            "flavors": len(cat.flavors),
            "module": c.module,
            "details": details(c),
        }
        for c, cat in catalog(ctx).clouds()
    ]

    def render(_: Any) -> None:
        table = DataTable(
            "cloud",
            "driver",
            "usable",
            "region",
            "security groups",
            "image upload",
            "catalog",
            "flavors",
            box=None,
        )
        for c in data:
            table.add_row(
                c["name"],
                c["driver"],
                "yes" if c["details"].get("usable") != "no" else styled("no", "yellow"),
                c["region"] or "-",
                "yes" if c["security_groups"] else styled("no", "yellow"),
                "yes" if c["image_upload"] else "no",
                c["catalog"],
                str(c["flavors"]),
            )
        console.print(table)
        for c in data:
            if c["details"].get("why_not"):
                console.print(f"{escape(c['name'])}: {escape(c['details']['why_not'])}")
            if "accelerator" in c["details"]:
                console.print(
                    f"{escape(c['name'])}: accelerator {escape(c['details']['accelerator'])} "
                    f"({escape(c['details']['accelerator_reason'])})"
                )

    emit(data, output, render)


def register(app: typer.Typer) -> None:
    app.command("show")(show_cmd)
    app.add_typer(sizes_app, name="sizes")
    app.add_typer(clouds_app, name="clouds")
