"""The QEMU process of one machine: start it daemonised, ask it over QMP,
stop it. It outlives the Python process; the pid file and the QMP socket in
the machine's folder are how it is found again."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from slipway.connectors.local._layout import MachineFolder
from slipway.domain.machines import MachineState

__all__ = ["QEMU_STATES", "kill", "pid_of", "qemu_status"]

log = logging.getLogger(__name__)

# QMP's RunState -> ours (qapi/run-state.json). Translated here and nowhere else.
QEMU_STATES: dict[str, MachineState] = {
    "prelaunch": MachineState.PENDING,
    "inmigrate": MachineState.PENDING,
    "restore-vm": MachineState.PENDING,
    "running": MachineState.RUNNING,
    "debug": MachineState.RUNNING,
    "finish-migrate": MachineState.RUNNING,
    "postmigrate": MachineState.STOPPED,
    "paused": MachineState.STOPPED,
    "suspended": MachineState.STOPPED,
    "save-vm": MachineState.STOPPED,
    "shutdown": MachineState.STOPPED,
    "watchdog": MachineState.ERROR,
    "guest-panicked": MachineState.ERROR,
    "internal-error": MachineState.ERROR,
    "io-error": MachineState.ERROR,
    "colo": MachineState.RUNNING,
}


def pid_of(folder: MachineFolder) -> int | None:
    """The pid of the machine's QEMU if it is alive and really is that QEMU
    (a recycled pid belongs to someone else: its command line won't name our folder)."""
    try:
        pid = int(folder.pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    if str(folder.root).encode() not in cmdline:
        return None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None
    return None if state == "Z" else pid


async def _ask(socket_path: str, command: str, timeout: float) -> object:
    from qemu.qmp import QMPClient  # lazily: only the local cloud needs it

    client = QMPClient("slipway")
    try:
        # A stopped or hung QEMU accepts the connection but never greets: bound every step.
        await asyncio.wait_for(client.connect(socket_path), timeout)
        return await asyncio.wait_for(client.execute(command), timeout)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), timeout)


def _qmp(folder: MachineFolder, command: str, timeout: float) -> object:
    """Run one QMP command; returns the reply's ``return`` member."""
    return asyncio.run(_ask(str(folder.qmp), command, timeout))


def qemu_status(folder: MachineFolder, timeout: float = 2.0) -> str | None:
    """QEMU's run state (``running``, ``paused`` …) over QMP; ``None`` if it does not answer."""
    try:
        reply = _qmp(folder, "query-status", timeout)
    except Exception as exc:  # QMP's errors are many and all mean "no answer"
        log.debug("QMP query-status on %s failed: %s", folder.id, exc)
        return None
    if isinstance(reply, dict) and reply.get("status"):
        return str(reply["status"])
    return None


def _wait_gone(folder: MachineFolder, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_of(folder) != pid:
            return True
        time.sleep(0.05)
    return pid_of(folder) != pid


KILLED_WAIT_S = 30.0
"""Seconds to wait for a QEMU to vanish after SIGKILL."""


def kill(folder: MachineFolder, grace: float = 5.0) -> None:
    """Stop the machine's QEMU: QMP ``quit``, then SIGKILL if it is still there
    after ``grace`` seconds. Does nothing when it is not running."""
    pid = pid_of(folder)
    if pid is None:
        return
    try:
        _qmp(folder, "quit", timeout=2.0)
    except Exception as exc:  # a hung or half-dead QEMU: fall through to SIGKILL
        log.debug("QMP quit on %s failed: %s", folder.id, exc)
    if _wait_gone(folder, pid, grace):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    # SIGKILL cannot be refused, but tearing down a guest's memory on a busy
    # host takes a while: wait for it, so that nothing outlives the machine.
    if not _wait_gone(folder, pid, KILLED_WAIT_S):
        log.warning("QEMU %d of %s is still exiting after SIGKILL", pid, folder.id)


def start(command: list[str], folder: MachineFolder) -> subprocess.CompletedProcess[str]:
    """Run QEMU with ``-daemonize``: returns once the guest is started and the
    parent has exited; QEMU's messages go to ``qemu.log`` and are returned."""
    result = subprocess.run(
        command,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        start_new_session=True,  # not in our process group: a Ctrl-C or kill of ours spares it
    )
    with folder.qemu_log.open("a") as out:
        out.write(result.stdout + result.stderr)
    return result
