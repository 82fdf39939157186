"""``slipway subscription …`` and ``slipway sync …``: a provider's clouds
kept equal to VO image lists (docs/sync.md).

Exit status as everywhere: 2 bad input, 3 not found, 4 not allowed (only
administrators manage subscriptions), 5 a conflict (a name taken, a sync
already running). ``sync run --wait`` exits 1 when the sync did not
succeed (a rejected list, failed images), 0 when the cloud matches the list.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

from slipway.entrypoints.cli.context import settings
from slipway.entrypoints.cli.output import (
    DataTable,
    OutputFormat,
    OutputOption,
    console,
    emit,
    err_console,
    escape,
)
from slipway.entrypoints.sync_json import (
    parse_duration,
    record_dict,
    status_dict,
    subscription_dict,
)
from slipway.errors import InputError
from slipway.services.sync import NewSubscription, SyncService

__all__ = ["subscription_app", "sync_app"]

subscription_app = typer.Typer(
    help="Subscriptions: a cloud kept equal to a VO's signed image list.", no_args_is_help=True
)
sync_app = typer.Typer(help="Run syncs and read their history.", no_args_is_help=True)


def _service(ctx: typer.Context) -> SyncService:
    from slipway.bootstrap import sync_service

    return sync_service(settings(ctx))


def _projects(pairs: list[str]) -> tuple[tuple[str, str], ...]:
    found = []
    for pair in pairs:
        vo, sep, project = pair.partition("=")
        if not sep or not vo.strip() or not project.strip():
            raise InputError(f"--project {pair!r} is not VO=PROJECT", field="--project")
        found.append((vo.strip(), project.strip()))
    return tuple(found)


@subscription_app.command("add")
def add_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The subscription's name, e.g. fedcloud-site.")],
    cloud: Annotated[str, typer.Option(help="The cloud whose image service is kept in sync.")],
    source: Annotated[
        str,
        typer.Option(
            help="The list's URL (…/vo/VO/image.list), or an OCI repository "
            "(oci://HOST/REPOSITORY[:TAG])."
        ),
    ],
    endorser_dn: Annotated[
        str | None,
        typer.Option(help="A list's trusted endorser: its DN, slash form (the list's hv:dn)."),
    ] = None,
    vo: Annotated[
        str | None,
        typer.Option(help="The VO an OCI repository's images are of (a list names its own)."),
    ] = None,
    endorser_ca: Annotated[
        str | None, typer.Option(help="The endorser's CA DN (hv:ca); any CA of --ca-dir if not.")
    ] = None,
    ca_dir: Annotated[
        str | None, typer.Option(help="Trusted CAs (hashed names); the server's ca_dir if not.")
    ] = None,
    project: Annotated[
        list[str] | None,
        typer.Option(help="VO=PROJECT: share the VO's images with that project (repeat)."),
    ] = None,
    every: Annotated[str, typer.Option(help="How often to sync: 3h, 30m, 1d …")] = "3h",
    grace: Annotated[
        str, typer.Option(help="How long a dropped image stays hidden before it is deleted.")
    ] = "1d",
    only: Annotated[
        str | None,
        typer.Option(help="Sync only images whose title, appliance or identifier match (glob)."),
    ] = None,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Subscribe CLOUD to the image list at SOURCE (signed by --endorser-dn),
    or to the disk images of an OCI repository (of VO --vo). Nothing is
    fetched yet: the first sync runs on schedule, or now with `slipway sync
    run NAME`."""
    new = NewSubscription(
        name=name,
        cloud=cloud,
        source=source,
        endorser_dn=endorser_dn,
        endorser_ca=endorser_ca,
        vo=vo,
        ca_dir=ca_dir,
        projects=_projects(project or []),
        interval=parse_duration(every, "--every"),
        grace=parse_duration(grace, "--grace"),
        only=only,
    )
    made = _service(ctx).add(new)
    emit(
        subscription_dict(made),
        output,
        lambda d: console.print(
            f"subscribed {escape(d['cloud'])} to {escape(d['source'])} as {escape(d['name'])}"
        ),
    )


@subscription_app.command("list")
def list_cmd(ctx: typer.Context, output: OutputOption = OutputFormat.TABLE) -> None:
    """Every subscription, with its cloud, source and next sync."""
    service = _service(ctx)
    data = [status_dict(service.status(s.name)) for s in service.subscriptions()]

    def render(rows: list[dict[str, Any]]) -> None:
        if not rows:
            console.print("no subscriptions; add one with slipway subscription add")
            return
        table = DataTable("name", "cloud", "list", "images", "last success", "state")
        for d in rows:
            active = sum(1 for i in d["images"] if i["state"] == "active")
            listed = d["list"]
            state = "failing" if d["failing"] else ("behind" if d["behind"] else "in sync")
            if d["syncing"]:
                state = "syncing"
            elif listed is None:
                state = "never synced"
            table.add_row(
                d["name"],
                d["cloud"],
                f"v{listed['version']}" if listed else "-",
                str(active),
                str(d["last_success"] or "-"),
                state,
            )
        console.print(table)

    emit(data, output, render)


@subscription_app.command("show")
def show_cmd(ctx: typer.Context, name: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """The subscription at a glance: the list it accepted, every image it
    keeps on its cloud (state, native id, errors), and its recent syncs."""
    data = status_dict(_service(ctx).status(name))

    def render(d: dict[str, Any]) -> None:
        console.print(f"[bold]{escape(d['name'])}[/]: {escape(d['cloud'])} ← {escape(d['source'])}")
        if d["endorser_dn"]:
            console.print(f"endorser: {escape(d['endorser_dn'])}")
        else:
            console.print("endorser: none (an OCI repository: every digest is checked)")
        if d["vo"]:
            console.print(f"VO: {escape(d['vo'])}")
        if d["projects"]:
            shared = ", ".join(f"{vo} → {p}" for vo, p in d["projects"].items())
            console.print(f"projects: {escape(shared)}")
        listed = d["list"]
        console.print(
            "list: never accepted"
            if listed is None
            else f"list: {escape(listed['identifier'])} version {escape(listed['version'])}"
        )
        table = DataTable("image", "version", "state", "native id", "error")
        for i in d["images"]:
            table.add_row(i["title"] or i["identifier"], i["version"], i["state"],
                          i["native_id"] or "-", i["error"] or "")  # fmt: skip
        console.print(table)
        _render_records(d["recent"])

    emit(data, output, render)


@subscription_app.command("rm")
def rm_cmd(
    ctx: typer.Context,
    name: str,
    forget: Annotated[
        bool, typer.Option(help="Remove it although it keeps images (they stay on the cloud).")
    ] = False,
) -> None:
    """Delete a subscription."""
    gone = _service(ctx).remove(name, forget=forget)
    console.print(f"removed subscription {escape(gone.name)}")


# -- syncs ----------------------------------------------------------------------------


@sync_app.command("run")
def run_cmd(
    ctx: typer.Context,
    name: str,
    wait: Annotated[
        bool, typer.Option(help="Sync in this command, with progress, and print the outcome.")
    ] = False,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Sync a subscription now: by a running worker, or here with --wait.
    With --wait, exits 1 unless the cloud ends up matching the list."""
    service = _service(ctx)
    if not wait:
        service.request(name)
        emit(
            {"requested": name},
            output,
            lambda _: console.print(
                f"a worker syncs {name} within seconds (slipway worker, or slipway serve)"
            ),
        )
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err_console,
        transient=True,
        disable=output is OutputFormat.JSON or not err_console.is_terminal,
    ) as bars:
        tasks: dict[str, Any] = {}

        def progress(step: str, title: str, done: int, total: int) -> None:
            key = f"{step} {title}"
            if key not in tasks:
                tasks[key] = bars.add_task(escape(key[:60]), total=total)
            bars.update(tasks[key], completed=done)

        record = service.run(name, progress=progress)
    data = record_dict(record)
    emit(data, output, _render_record)
    if record.outcome.value not in ("succeeded", "unchanged"):
        raise typer.Exit(1)


@sync_app.command("history")
def history_cmd(
    ctx: typer.Context,
    name: Annotated[str | None, typer.Argument(help="One subscription; all by default.")] = None,
    limit: Annotated[int, typer.Option(help="How many syncs, newest first.")] = 20,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Past syncs, newest first: outcome, list version, bytes, failed images."""
    records = _service(ctx).history(name, limit)
    emit([record_dict(r, steps=False) for r in records], output, _render_records)


@sync_app.command("show")
def show_sync_cmd(
    ctx: typer.Context, sync_id: int, output: OutputOption = OutputFormat.TABLE
) -> None:
    """One sync with every step it took and each step's message."""
    emit(record_dict(_service(ctx).record(sync_id)), output, _render_record)


def _render_records(records: list[dict[str, Any]]) -> None:
    if not records:
        console.print("no syncs yet")
        return
    table = DataTable("id", "subscription", "started", "outcome", "list", "bytes", "failed")
    for r in records:
        table.add_row(
            str(r["id"]),
            r["subscription"],
            str(r["started_at"]),
            r["outcome"],
            r["list_version"] or "-",
            str(r["bytes"]),
            str(r["failed_images"]),
        )
    console.print(table)


def _render_record(r: dict[str, Any]) -> None:
    console.print(
        f"sync {r['id']} of {escape(r['subscription'])}: [bold]{r['outcome']}[/]"
        + (f", list version {escape(r['list_version'])}" if r["list_version"] else "")
    )
    for problem in r["problems"]:
        console.print(f"  [red]{escape(problem['reason'])}[/]: {escape(problem['detail'])}")
    table = DataTable("step", "image", "outcome", "seconds", "bytes", "detail")
    for s in r["steps"]:
        table.add_row(s["step"], s["title"] or s["image"] or "", s["outcome"],
                      f"{s['seconds']:.2f}", str(s["bytes"]), s["detail"])  # fmt: skip
    console.print(table)
