"""Run commands: deploy, runs, run show, ssh, terminate, console, worker."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.style import Style
from rich.text import Text

from slipway.domain.runs import TERMINAL, KeepRunning, Run, RunState
from slipway.domain.sizes import Size
from slipway.entrypoints.cli.context import settings
from slipway.entrypoints.cli.output import (
    DataTable,
    OutputFormat,
    OutputOption,
    console,
    emit,
    err_console,
    escape,
    styled,
    warn,
)
from slipway.errors import InputError, StillRunning

__all__ = ["register", "run_app"]

run_app = typer.Typer(help="One run: show it.", no_args_is_help=True)
_STYLE = {"ready": "green", "failed": "red", "cancelled": "yellow", "terminated": "dim"}


def _runtime(ctx: typer.Context):  # type: ignore[no-untyped-def]
    from slipway.bootstrap import runtime

    return runtime(settings(ctx))


def parse_size(text: str) -> Size:
    """``cpu=2,ram=4,disk=20`` → Size; raises InputError naming the bad part."""
    values: dict[str, float] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("cpu", "ram", "disk"):
            raise InputError(f"--size: {part!r} is not cpu=N, ram=GB or disk=GB")
        try:
            values[key] = float(value)
        except ValueError:
            raise InputError(f"--size: {key} must be a number, got {value!r}") from None
    cpu = values.get("cpu")
    if cpu is not None and not cpu.is_integer():
        raise InputError(f"--size: cpu must be a whole number, got {cpu:g}")
    return Size(int(cpu) if cpu is not None else None, values.get("ram"), values.get("disk"))


def run_json(run: Run) -> dict[str, Any]:
    return run.summary()


def _public_keys(path: str) -> tuple[str, ...]:
    if not path:
        return ()
    try:
        return tuple(
            line for line in Path(path).expanduser().read_text().splitlines() if line.strip()
        )
    except OSError as exc:
        raise InputError(f"cannot read your SSH public key {path}: {exc.strerror}") from exc


def _wait(rt: Any, run_id: str, until: frozenset[RunState], timeout: float) -> Run:
    """Move the run with an embedded worker, printing each state with its time."""
    from slipway.entrypoints.worker import EmbeddedWorker

    start = time.monotonic()
    seen: RunState | None = None
    # Progress goes to stderr, so --output json keeps stdout clean.
    with EmbeddedWorker(rt), err_console.status("") as status:
        while True:
            run: Run = rt.runs.get(run_id)
            elapsed = time.monotonic() - start
            if run.state is not seen:
                style = _STYLE.get(run.state.value, "cyan")
                err_console.print(
                    f"[{style}]{run.state.value:<16}[/] {elapsed:6.1f} s  {escape(run.message)}"
                )
                seen = run.state
            if run.state in until or run.state in TERMINAL:
                return run
            if elapsed > timeout:
                raise StillRunning(
                    f"stopped waiting after {timeout:g} s: run {run_id} is still "
                    f"{run.state}, and goes on without this command",
                    hint=f"follow it with slipway run show {run_id}; "
                    f"stop it with slipway terminate {run_id}",
                )
            status.update(f"{run.state.value} … {elapsed:.0f} s")
            time.sleep(0.5)


def _print_links(run: Run) -> None:
    for key, value in sorted(run.parameters.items()):
        if key.startswith("url."):
            # A link style, not [link=…] markup: the URL holds a login user's name.
            link = Text(str(value), style=Style(link=str(value)))
            console.print(Text(f"  {key:<20} "), link, sep="")
    cpu, ram = run.parameters.get("guest.cpu"), run.parameters.get("guest.ram_gb")
    if cpu is not None:
        console.print(f"  guest sees {cpu} CPU and {ram} GB of RAM")


def deploy_cmd(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Image or component to deploy (NAME or NAME@N).")],
    cloud: Annotated[str, typer.Option(help="The cloud to deploy on.")],
    size: Annotated[
        str | None, typer.Option(help="Override the size: cpu=2,ram=4,disk=20.")
    ] = None,
    wait: Annotated[
        bool,
        typer.Option(
            help="Stay until the run is ready or failed; exit 8 if that takes "
            "longer than the timeout (the run goes on)."
        ),
    ] = True,
    keep_running: Annotated[KeepRunning | None, typer.Option(help="Override keep_running.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds before the run fails.")] = 1800,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Deploy a definition on a cloud and follow the run to an SSH link."""
    rt = _runtime(ctx)
    from slipway.services.deploy import DeployRequest

    request = DeployRequest(
        name,
        cloud,
        parse_size(size) if size else None,
        _public_keys(rt.settings.ssh_public_key),
        keep_running,
        timeout,
    )
    run, warnings = rt.runs.deploy(request)
    warn(warnings)
    if output is OutputFormat.TABLE:
        console.print(
            f"run [bold]{run.id}[/]: {run.module} on {escape(cloud)}, flavor "
            f"{escape(run.target.flavor)} ({run.target.cpu} CPU, {run.target.ram:g} GB)"
        )
    if wait:
        run = _wait(rt, run.id, frozenset({RunState.READY}), timeout + 60)
    elif output is OutputFormat.TABLE:
        console.print("not waiting: a worker must be running (slipway worker, or slipway serve)")

    def render(_: Any) -> None:
        if run.state is RunState.READY:
            _print_links(run)
        elif run.state is RunState.FAILED:
            console.print(f"[red]failed in {run.step}:[/] {escape(run.message)}")

    emit(run_json(run), output, render)
    if run.state is RunState.FAILED:
        raise typer.Exit(1)


def runs_cmd(
    ctx: typer.Context,
    everyone: Annotated[bool, typer.Option("--all", help="Everyone's (admins).")] = False,
    state: Annotated[
        list[RunState] | None, typer.Option(help="Only runs in this state (repeatable).")
    ] = None,
    cloud: Annotated[str | None, typer.Option(help="Only runs on this cloud.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    offset: Annotated[
        int, typer.Option(min=0, max=10_000_000, help="Skip this many runs first.")
    ] = 0,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Your runs, newest first."""
    runs = _runtime(ctx).runs.list(
        everyone=everyone, states=state or None, cloud=cloud, limit=limit, offset=offset
    )

    def render(_: Any) -> None:
        table = DataTable("run", "state", "module", "cloud", "flavor", "ssh", "created", box=None)
        for run in runs:
            style = _STYLE.get(run.state.value, "cyan")
            table.add_row(
                run.id,
                styled(run.state.value, style),
                run.module,
                run.cloud,
                run.target.flavor,
                str(run.parameters.get("url.ssh", "")),
                f"{run.created_at:%Y-%m-%d %H:%M}",
            )
        console.print(table)

    emit([run_json(r) for r in runs], output, render)


@run_app.command("show")
def run_show(ctx: typer.Context, run_id: str, output: OutputOption = OutputFormat.TABLE) -> None:
    """A run's state, timeline and parameters."""
    rt = _runtime(ctx)
    run = rt.runs.get(run_id)
    events = rt.runs.events(run_id)
    data = run_json(run) | {
        "events": [{"at": e.at, "state": e.state.value, "message": e.message} for e in events]
    }

    def render(_: Any) -> None:
        style = _STYLE.get(run.state.value, "cyan")
        console.print(
            f"run [bold]{run.id}[/] — [{style}]{run.state.value}[/] — {escape(run.module)} on "
            f"{escape(run.cloud)}, owner {escape(run.owner)}"
        )
        if run.state is RunState.FAILED:
            console.print(f"[red]failed in {run.step}:[/] {escape(run.message)}")
        timeline = DataTable("time", "state", "message", box=None)
        for event in events:
            timeline.add_row(f"{event.at:%H:%M:%S}", event.state.value, event.message)
        console.print(timeline)
        params = DataTable("parameter", "value", box=None)
        for key, value in sorted(run.parameters.items()):
            if key not in ("console.tail", "recipes.output"):
                params.add_row(key, str(value))
        console.print(params)
        for key in ("recipes.output", "console.tail"):
            if run.state is RunState.FAILED and run.parameters.get(key):
                console.print(f"[bold]{key}[/]\n{escape(str(run.parameters[key]))}")

    emit(data, output, render)


def ssh_cmd(
    ctx: typer.Context,
    run_id: str,
    command: Annotated[list[str] | None, typer.Argument(help="Command to run.")] = None,
) -> None:
    """Log in to a run's machine (or run a command there) with the run's key."""
    host, port, user, private_key = _runtime(ctx).runs.access(run_id)
    with tempfile.TemporaryDirectory(prefix="slipway-ssh-") as folder:
        key = Path(folder) / "id"
        key.write_text(private_key)
        key.chmod(0o600)
        argv = [
            "ssh",
            "-i",
            str(key),
            "-p",
            str(port),
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            f"{user}@{host}",
            *(command or []),
        ]
        code = subprocess.call(argv, stdin=sys.stdin)
    raise typer.Exit(code)


def terminate_cmd(
    ctx: typer.Context,
    run_id: str,
    wait: Annotated[bool, typer.Option(help="Stay until released.")] = True,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Release everything a run holds, from any state."""
    rt = _runtime(ctx)
    run = rt.runs.terminate(run_id)
    if wait and run.state not in TERMINAL:
        run = _wait(rt, run_id, TERMINAL, 600)
    emit(run_json(run), output, lambda _: console.print(f"run {run.id} is {run.state}"))


def console_cmd(
    ctx: typer.Context, run_id: str, lines: Annotated[int, typer.Option(min=1, max=100000)] = 100
) -> None:
    """The tail of the machine's serial console."""
    sys.stdout.write(_runtime(ctx).runs.console(run_id, lines))


def worker_cmd(
    ctx: typer.Context, threads: Annotated[int | None, typer.Option(min=1, max=256)] = None
) -> None:
    """Move runs along until stopped (SIGINT/SIGTERM)."""
    import logging

    from slipway.entrypoints.worker import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    rt = _runtime(ctx)
    run_worker(rt, threads or int(rt.settings.worker_threads))


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy_cmd)
    app.command("runs")(runs_cmd)
    app.add_typer(run_app, name="run")
    app.command("ssh", context_settings={"allow_interspersed_args": False})(ssh_cmd)
    app.command("terminate")(terminate_cmd)
    app.command("console")(console_cmd)
    app.command("worker")(worker_cmd)
