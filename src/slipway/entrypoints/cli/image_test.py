"""``slipway image test``: boot an image on the local cloud and check it from inside.

Exit status: 0 when every check passed, 1 when one failed (the image did not
boot, no SSH, cloud-init did not run or finish, or an in-guest check failed),
2 when IMAGE is not a usable qcow2 file, 3 when no such image is stored,
6 when QEMU could not start, 130 when interrupted — the machine is deleted in
every case.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from slipway.entrypoints.cli.context import settings
from slipway.entrypoints.cli.image import (
    Accelerator,
    AcceleratorOption,
    TimeoutOption,
    image_app,
)
from slipway.entrypoints.cli.output import OutputFormat, OutputOption, console, emit, err_console

if TYPE_CHECKING:
    from slipway.services.boottest import BootTestReport

__all__ = ["image_app", "render_boot_test", "run_boot_test", "test_outcome"]

_STYLE = {"ok": "green", "failed": "bold red", "skipped": "dim"}


LoginUserOption = Annotated[
    str, typer.Option(help="The user the test's user data creates and logs in as.")
]


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the test like Ctrl-C does: through the clean-up."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(number: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_boot_test(
    ctx: typer.Context,
    image: str,
    *,
    timeout: float,
    login_user: str,
    accelerator: Accelerator,
) -> BootTestReport:
    """Boot-test ``image`` (a qcow2 file or a stored image's name), showing
    progress on stderr."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from slipway.bootstrap import boot_image, boot_tester, image_store
    from slipway.services.boottest import Phase

    target = boot_image(settings(ctx), image)
    tester = boot_tester(settings(ctx), accelerator.value)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    with _sigterm_interrupts(), Progress(*columns, console=err_console) as progress:
        tasks: list[Any] = []

        def on_phase(phase: Phase, detail: str) -> None:
            if tasks:
                progress.update(tasks[-1], completed=1, total=1)
            text = f"{phase.value}: {detail}" if detail else phase.value
            tasks.append(progress.add_task(text, total=None))

        report = tester.test(target, timeout=timeout, login_user=login_user, on_phase=on_phase)
        if tasks:
            progress.update(tasks[-1], completed=1, total=1)
    if not Path(target.image_id).is_absolute():  # a stored image: keep the outcome with it
        image_store(settings(ctx)).record_test(target.image_id, test_outcome(report))
    return report


def test_outcome(report: BootTestReport) -> dict[str, Any]:
    """What the image store keeps of a boot test (``tested`` in its metadata)."""
    return {
        "passed": report.passed,
        "failed_check": report.failure.check if report.failure else None,
        "seconds_to_ssh": report.seconds_to_ssh,
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


@image_app.command("test")
def test_cmd(
    ctx: typer.Context,
    image: Annotated[
        str, typer.Argument(help="A qcow2 file, or the name of an image in the local store.")
    ],
    timeout: TimeoutOption = 600.0,
    login_user: LoginUserOption = "slipway",
    accelerator: AcceleratorOption = Accelerator.AUTO,
    output: OutputOption = OutputFormat.TABLE,
) -> None:
    """Boot IMAGE on the local cloud and check it from inside: / grown to the disk,
    no failed units, host keys made at first boot, the NoCloud datasource found, the
    firewall active, no password on the login user.

    Exit status: 0 when every check passed, 1 when one failed (with the console's
    tail). The test machine is deleted in every case, Ctrl-C included.
    """
    report = run_boot_test(
        ctx, image, timeout=timeout, login_user=login_user, accelerator=accelerator
    )
    emit(report.to_dict(), output, render_boot_test)
    raise typer.Exit(0 if report.passed else 1)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} s"


def _costs(costs: list[dict[str, Any]], top: int = 5) -> str:
    from rich.markup import escape

    return ", ".join(f"{escape(c['name'])} {c['seconds']:.1f} s" for c in costs[:top])


def _render_profile(profile: dict[str, Any]) -> None:
    """Where the boot's time went, when the guest could say."""
    rows = [
        ("boot stages", profile.get("stages") or []),
        ("slowest units", profile.get("units") or []),
        ("slowest cloud-init modules", profile.get("cloud_init") or []),
    ]
    for label, costs in rows:
        if costs:
            console.print(f"[dim]{label}:[/] {_costs(costs)}", highlight=False)


def render_boot_test(data: dict[str, Any]) -> None:
    """The report of ``image test`` for people (``data``: ``BootTestReport.to_dict()``)."""
    from rich.markup import escape
    from rich.table import Table

    console.print(
        f"[bold]{escape(data['image'])}[/] booted with {data['accelerator'] or 'QEMU'}: "
        f"SSH after {_seconds(data['seconds_to_ssh'])}, cloud-init done after "
        f"{_seconds(data['seconds_to_cloud_init'])}"
    )
    table = Table(pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail", overflow="fold")
    for check in data["checks"]:
        style = _STYLE.get(check["status"], "")
        table.add_row(check["name"], f"[{style}]{check['status']}[/]", escape(check["detail"]))
    console.print(table)
    _render_profile(data.get("profile") or {})
    if data["passed"]:
        console.print("[green]passed[/]: every check is ok")
        return
    console.print(f"[bold red]failed[/]: {data['failed_check']}: {escape(data['reason'])}")
    if data["console_tail"]:
        console.print("[dim]the console's last lines:[/]")
        console.print(escape(data["console_tail"]), highlight=False, markup=True)
