"""``slipway image …``: build, convert, compact and the local image store.

Heavy imports stay inside the commands so ``slipway --help`` starts fast.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from slipway.entrypoints.cli.context import settings
from slipway.entrypoints.cli.output import OutputOption, console, emit, err_console

if TYPE_CHECKING:
    from slipway.imagekit.recipe import DiskFormat
    from slipway.imagekit.store import ImageStore

__all__ = ["Accelerator", "AcceleratorOption", "TimeoutOption", "image_app"]

image_app = typer.Typer(
    help="Build, check, sanitise, compact, convert and store VM images.", no_args_is_help=True
)

_FORMATS = "qcow2, raw, vmdk or ova"


class Accelerator(StrEnum):
    AUTO = "auto"
    KVM = "kvm"
    TCG = "tcg"


AcceleratorOption = Annotated[
    Accelerator,
    typer.Option(
        help="QEMU accelerator of the boot test: auto is the local cloud's own choice "
        "(KVM only where a guest really boots with it, else TCG).",
        case_sensitive=False,
    ),
]
TimeoutOption = Annotated[
    float,
    typer.Option(help="Seconds the boot test waits for the boot, SSH and cloud-init."),
]


def _format(text: str) -> DiskFormat:
    from slipway.errors import InputError
    from slipway.imagekit.recipe import DiskFormat

    try:
        return DiskFormat(text.lower())
    except ValueError:
        raise InputError(f"unknown image format {text!r}", hint=f"one of {_FORMATS}") from None


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB"


def _store(ctx: typer.Context) -> ImageStore:
    from slipway.bootstrap import image_store

    return image_store(settings(ctx))


@image_app.command("build")
def build(
    ctx: typer.Context,
    recipe: Path = typer.Argument(..., help="The recipe file (kind: recipe)."),
    output_dir: Path = typer.Option(Path(), "--output-dir", "-d", help="Where images go."),
    formats: list[str] = typer.Option(
        [], "--format", "-f", help=f"Output format ({_FORMATS}); repeatable; default: the recipe's."
    ),
    store_as: str | None = typer.Option(
        None, "--store", help="Also import the qcow2 into the local image store under this name."
    ),
    test: bool = typer.Option(
        False,
        "--test",
        help="Boot-test the qcow2 (slipway image test); store it only if it passes.",
    ),
    timeout: Annotated[
        float, typer.Option("--test-timeout", help="Seconds the boot test may take.")
    ] = 600.0,
    accelerator: AcceleratorOption = Accelerator.AUTO,
    output: OutputOption = "table",  # type: ignore[assignment]
) -> None:
    """Build a clean image from a recipe (needs root: mmdebstrap --mode=root).

    Exit status: 0 when built (and, with --test, when every check passed), 1 when
    the boot test failed: the image is then not stored.
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from slipway.imagekit.build import BuildPhase, build_image
    from slipway.imagekit.recipe import DiskFormat, load_recipe

    parsed = load_recipe(recipe)
    if store_as:  # find a taken name now, not after a minute of building
        _store(ctx).ensure_free(store_as)
    wanted = tuple(dict.fromkeys(_format(f) for f in formats)) or parsed.formats
    if (store_as or test) and DiskFormat.QCOW2 not in wanted:
        wanted = (*wanted, DiskFormat.QCOW2)
    cache = settings(ctx).data_path / "cache" / "packages"
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=False) as progress:
        current: list[tuple[BuildPhase, Any]] = []

        def on_phase(phase: BuildPhase, detail: str) -> None:
            if current and current[-1][0] is phase:  # the same phase moved on
                progress.update(current[-1][1], description=f"{phase.value}: {detail}")
                return
            if current:
                progress.update(current[-1][1], completed=1, total=1)
            current.append((phase, progress.add_task(f"{phase.value}: {detail}", total=None)))

        result = build_image(parsed, output_dir, cache_dir=cache, formats=wanted, on_phase=on_phase)
        if current:
            progress.update(current[-1][1], completed=1, total=1)
    data: dict[str, Any] = {
        "recipe": result.recipe,
        "outputs": {k: str(v) for k, v in result.outputs.items()},
        "sizes": {k: v.stat().st_size for k, v in result.outputs.items()},
        "manifest": str(result.manifest),
        "packages": result.packages,
        "rootfs_bytes": result.rootfs_bytes,
        "seconds": {k: round(v, 1) for k, v in result.seconds.items()},
    }
    passed = True
    if test:
        from slipway.entrypoints.cli.image_test import run_boot_test

        report = run_boot_test(
            ctx,
            str(result.outputs["qcow2"]),
            timeout=timeout,
            login_user="slipway",
            accelerator=accelerator,
        )
        data["test"] = report.to_dict()
        passed = report.passed
    if store_as and passed:
        entry = _store(ctx).import_file(
            result.outputs["qcow2"],
            store_as,
            os_info={
                "distribution": parsed.distribution,
                "version": parsed.release,
                "arch": parsed.arch,
            },
        )
        data["stored_as"] = entry.name

    def render(d: dict[str, Any]) -> None:
        for fmt, path in d["outputs"].items():
            console.print(f"{fmt}: {path} ({_mib(d['sizes'][fmt])})")
        console.print(f"manifest: {d['manifest']} ({d['packages']} packages)")
        console.print(
            f"root file system: {_mib(d['rootfs_bytes'])}; "
            + ", ".join(f"{k} {v} s" for k, v in d["seconds"].items())
        )
        if "stored_as" in d:
            console.print(f"stored as: {d['stored_as']}")
        if "test" in d:
            from slipway.entrypoints.cli.image_test import render_boot_test

            render_boot_test(d["test"])
            if store_as and not d["test"]["passed"]:
                console.print(f"not stored as {store_as}: the boot test failed")

    emit(data, output, render)
    if not passed:
        raise typer.Exit(1)


@image_app.command("convert")
def convert_cmd(
    source: Path = typer.Argument(..., help="Image to convert (qcow2, raw, vmdk or ova)."),
    target: Path | None = typer.Argument(
        None, help="Output file; default: SOURCE with the new suffix."
    ),
    to: str = typer.Option(..., "--to", "-t", help=f"Target format: {_FORMATS}."),
    allow_external: bool = typer.Option(
        False, "--allow-external", help="Follow a backing file or external extents (flattens)."
    ),
    output: OutputOption = "table",  # type: ignore[assignment]
) -> None:
    """Convert an image between qcow2, raw, VMDK and OVA (compressed where possible)."""
    from slipway.errors import InputError
    from slipway.imagekit.convert import convert, open_image

    fmt = _format(to)
    dest = target or source.with_suffix(f".{fmt.value}")
    if dest.resolve() == source.resolve():
        raise InputError(
            f"{dest}: the output would overwrite the input", hint="name another output"
        )
    image = open_image(source, allow_external=allow_external)
    convert(image, dest, fmt, name=dest.stem)
    data = {
        "source": str(source),
        "source_format": image.container.value,
        "target": str(dest),
        "format": fmt.value,
        "virtual_size": image.virtual_size,
        "source_bytes": source.stat().st_size,
        "target_bytes": dest.stat().st_size,
    }
    emit(
        data,
        output,
        lambda d: console.print(
            f"{d['target']}: {d['format']}, {_mib(d['target_bytes'])} "
            f"(from {d['source_format']}, {_mib(d['source_bytes'])})"
        ),
    )


@image_app.command("compact")
def compact_cmd(
    source: Path = typer.Argument(..., help="Image to compact (qcow2, raw, vmdk or ova)."),
    target: Path | None = typer.Argument(
        None, help="Output file; default: SOURCE's name with .compact before the suffix."
    ),
    to: str = typer.Option("qcow2", "--to", "-t", help=f"Output format: {_FORMATS}."),
    output: OutputOption = "table",  # type: ignore[assignment]
) -> None:
    """Zero free space, sparsify and compress an image into a new file."""
    from slipway.errors import InputError
    from slipway.imagekit.compact import compact

    fmt = _format(to)
    dest = target or source.with_name(f"{source.stem}.compact.{fmt.value}")
    if dest.resolve() == source.resolve():
        raise InputError(
            f"{dest}: the output would overwrite the input", hint="name another output"
        )
    with err_console.status("compacting: zero free space, sparsify, compress"):
        result = compact(source, dest, fmt)
    data = {
        "source": str(result.source),
        "target": str(result.target),
        "format": result.format,
        "source_bytes": result.source_bytes,
        "target_bytes": result.target_bytes,
        "file_systems": result.file_systems,
    }
    emit(
        data,
        output,
        lambda d: console.print(
            f"{d['target']}: {_mib(d['target_bytes'])} (was {_mib(d['source_bytes'])}; "
            f"{d['file_systems']} file system(s) zeroed)"
        ),
    )


def _os_info(text: str | None) -> dict[str, str] | None:
    if not text:
        return None
    parts = text.replace("/", " ").split()
    keys = ("distribution", "version", "arch")
    return dict(zip(keys, parts, strict=False))


@image_app.command("import")
def import_cmd(
    ctx: typer.Context,
    file: Path = typer.Argument(..., help="Image file (qcow2, raw, vmdk or ova)."),
    name: str = typer.Option(..., "--name", "-n", help="Name in the store: the native image id."),
    os_name: str | None = typer.Option(
        None, "--os", help="Operating system, e.g. 'debian 12 amd64'."
    ),
    output: OutputOption = "table",  # type: ignore[assignment]
) -> None:
    """Put an image into the local image store (stored as qcow2)."""
    with err_console.status(f"importing {file}"):
        entry = _store(ctx).import_file(file, name, os_info=_os_info(os_name))
    emit(
        entry.to_dict(),
        output,
        lambda d: console.print(
            f"stored {d['name']}: {_mib(d['file_size'])}, sha512 {d['sha512'][:16]}…"
        ),
    )


def _check_text(check: dict[str, Any] | None) -> str:
    """One word for a stored check report: not checked, clean, or has errors."""
    if check is None:
        return "-"
    if "has_errors" in check:
        count = len(check.get("findings") or [])
        return f"{'errors' if check['has_errors'] else 'ok'} ({count} findings)"
    return str(check.get("status", "checked"))


@image_app.command("list")
def list_cmd(ctx: typer.Context, output: OutputOption = "table") -> None:  # type: ignore[assignment]
    """List the images in the local image store."""
    from rich.table import Table

    rows = [e.to_dict() for e in _store(ctx).list()]

    def render(data: list[dict[str, Any]]) -> None:
        if not data:
            console.print("the local image store is empty")
            return
        table = Table("name", "format", "virtual", "file", "os", "check", "imported")
        for d in data:
            os_info = d["os"] or {}
            keys = ("distribution", "version", "arch")
            os_text = " ".join(str(os_info[k]) for k in keys if k in os_info) or "-"
            check = _check_text(d["check"])
            table.add_row(
                d["name"],
                d["format"],
                _mib(d["virtual_size"]),
                _mib(d["file_size"]),
                os_text,
                check,
                d["imported_at"],
            )
        console.print(table)

    emit(rows, output, render)


@image_app.command("rm")
def rm_cmd(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Name of the stored image."),
    output: OutputOption = "table",  # type: ignore[assignment]
) -> None:
    """Remove an image from the local image store (refused while a run uses it)."""
    entry = _store(ctx).remove(name)
    emit({"removed": entry.name}, output, lambda d: console.print(f"removed {d['removed']}"))
