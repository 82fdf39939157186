"""``slipway image test``: boot an image on the local cloud and check it from inside.

The image boots on a machine of its own (a disk bigger than the image, so
that growing ``/`` shows) with a NoCloud seed whose user data creates the
login user with a throwaway SSH key and nothing else: what is tested is the
image's own configuration. The test waits for SSH and for cloud-init to
finish, runs the in-guest checks of :mod:`slipway.services.guest_checks`,
and deletes the machine whatever happens — a failure, a timeout, Ctrl-C.

While no login works, :class:`~slipway.services.boot_console.BootWatch`
reads the serial console, so an image without sshd or without cloud-init
fails as soon as that is certain rather than at the timeout.
"""

from __future__ import annotations

import contextlib
import math
import re
import shlex
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from slipway.connectors.base import Connector
from slipway.domain.machines import BootImage, Machine, MachineSpec, MachineState
from slipway.errors import InputError, NotFound, SlipwayError
from slipway.services.boot_console import BootWatch, Verdict, strip_colours
from slipway.services.boot_profile import BootProfile, profile_script, read_profile
from slipway.services.guest_checks import (
    GUEST_CHECKS,
    CheckResult,
    CheckStatus,
    checks_script,
    cloud_init_errors,
    cloud_init_status,
    evaluate,
    split_sections,
)
from slipway.services.ports import GuestLogin, GuestShell, KeyPair

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "LOGIN_USER",
    "TEST_TAG",
    "BootImage",
    "BootTestReport",
    "BootTester",
    "Phase",
    "disk_bytes",
    "user_data",
]

GIB = 1024**3
MIB = 1024**2
DEFAULT_TIMEOUT_S = 600.0
LOGIN_USER = "slipway"
TEST_TAG = "slipway-image-test"
"""Tag (value: the test's token) on the machine, to find it again when
creating it was interrupted before its id was known."""
CPU = 2
RAM_GB = 1.0
POLL_S = 1.0
CLOUD_INIT_WAIT_S = 15
"""One ``cloud-init status --wait`` lasts at most this long; between two,
the machine's state and the deadline are looked at again."""
CONSOLE_LINES = 400
_STILL_RUNNING = ("running", "not run", "not started")
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class Phase(StrEnum):
    STARTING = "starting the machine"
    BOOTING = "booting, waiting for SSH"
    CLOUD_INIT = "waiting for cloud-init to finish"
    CHECKING = "checking inside the machine"
    CLEANING = "deleting the machine"


@dataclass(frozen=True)
class BootTestReport:
    """What ``image test`` found. Seconds count from the start of QEMU;
    ``disk_bytes`` is the size of the machine's disk."""

    image: str
    accelerator: str
    disk_bytes: int
    checks: tuple[CheckResult, ...]
    failure: Verdict | None
    seconds_to_ssh: float | None
    seconds_to_cloud_init: float | None
    seconds: float
    console_tail: str = field(default="", repr=False)
    profile: BootProfile = field(default_factory=BootProfile)

    @property
    def passed(self) -> bool:
        return self.failure is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "passed": self.passed,
            "failed_check": self.failure.check if self.failure else None,
            "reason": self.failure.detail if self.failure else None,
            "accelerator": self.accelerator,
            "disk_bytes": self.disk_bytes,
            "seconds_to_ssh": self.seconds_to_ssh,
            "seconds_to_cloud_init": self.seconds_to_cloud_init,
            "seconds": self.seconds,
            "checks": [c.to_dict() for c in self.checks],
            "profile": self.profile.to_dict(),
            "console_tail": self.console_tail,
        }


def disk_bytes(virtual_size: int) -> int:
    """The test machine's disk: the image plus a quarter of it, at least
    1 GiB more, in whole MiB — so an ungrown ``/`` stays below
    ``GROWN_FRACTION`` of it (at most 80 %)."""
    extra = max(GIB, virtual_size // 4)
    return math.ceil((virtual_size + extra) / MIB) * MIB


def user_data(login_user: str, public_key: str) -> str:
    """The NoCloud user data: the login user with the key and sudo, nothing else."""
    if not _NAME.match(login_user) or login_user == "root":
        raise InputError(
            f"login user {login_user!r} is not a valid user name",
            hint="lower-case letters, digits, '_' and '-', not root",
        )
    user = {
        "name": login_user,
        "shell": "/bin/sh",
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
        "ssh_authorized_keys": [public_key],
    }
    return "#cloud-config\n" + yaml.safe_dump({"users": [user]}, sort_keys=False, width=1000)


@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM off while cleaning up (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in saved.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


OnPhase = Callable[[Phase, str], None]


def _quiet(phase: Phase, detail: str) -> None:
    pass


@dataclass
class _Boot:
    """One test in progress."""

    machine_id: str
    key: KeyPair
    login_user: str
    timeout: float
    started: float
    watch: BootWatch = field(default_factory=BootWatch)
    ssh_at: float | None = None
    cloud_init_at: float | None = None
    rows: dict[str, CheckResult] = field(default_factory=dict)
    profile: BootProfile = field(default_factory=BootProfile)


class BootTester:
    """Runs boot tests on ``connector`` (the local cloud)."""

    def __init__(
        self,
        connector: Connector,
        guests: GuestLogin,
        new_key: Callable[[str], KeyPair],
        *,
        accelerator: Callable[[], str] = lambda: "",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._connector = connector
        self._guests = guests
        self._new_key = new_key
        self._accelerator = accelerator
        self._clock = clock
        self._sleep = sleep

    def test(
        self,
        image: BootImage,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,
        login_user: str = LOGIN_USER,
        on_phase: OnPhase = _quiet,
    ) -> BootTestReport:
        """Boot ``image``, check it, delete the machine; ``timeout`` in seconds
        bounds the whole test up to the checks."""
        if timeout <= 0:
            raise InputError(f"the timeout must be positive, got {timeout:g} s")
        token = uuid.uuid4().hex[:12]
        key = self._new_key(f"slipway-image-test-{token}")
        disk = disk_bytes(image.virtual_size)
        spec = MachineSpec(
            name=f"image-test-{token}",
            image_id=image.image_id,
            flavor=f"c{CPU}-m{RAM_GB:g}",
            cpu=CPU,
            ram_gb=RAM_GB,
            disk_gb=disk / GIB,
            user_data=user_data(login_user, key.public),
            tags={TEST_TAG: token},
            client_token=token,
            first_attempt=True,
        )
        machine_id: str | None = None
        try:
            on_phase(Phase.STARTING, image.label)
            started = self._clock()
            machine = self._connector.create_machine(spec)
            machine_id = machine.id
            boot = _Boot(machine.id, key, login_user, timeout, started)
            failure, tail = self._follow(boot, disk, on_phase)
            checks = tuple(boot.rows.values())
            return BootTestReport(
                image=image.label,
                accelerator=self._accelerator(),
                disk_bytes=disk,
                checks=checks,
                failure=failure,
                seconds_to_ssh=boot.ssh_at,
                seconds_to_cloud_init=boot.cloud_init_at,
                seconds=round(self._clock() - started, 1),
                console_tail=tail,
                profile=boot.profile,
            )
        finally:
            with _uninterrupted():
                with contextlib.suppress(Exception):
                    on_phase(Phase.CLEANING, machine_id or "")
                self._clean_up(token, machine_id)

    # -- the steps ---------------------------------------------------------------------

    def _now(self, boot: _Boot) -> float:
        return round(self._clock() - boot.started, 1)

    def _follow(self, boot: _Boot, disk: int, on_phase: OnPhase) -> tuple[Verdict | None, str]:
        """Wait, check, and say what failed first (with the console's tail)."""
        names = ("boot", "ssh", "cloud-init", *GUEST_CHECKS)
        boot.rows = {n: CheckResult(n, CheckStatus.SKIPPED, "not reached") for n in names}
        on_phase(Phase.BOOTING, boot.machine_id)
        shell, failure = self._wait_for_ssh(boot)
        try:
            if shell is not None:
                on_phase(Phase.CLOUD_INIT, f"SSH after {boot.ssh_at:.0f} s")
                shell, status = self._wait_for_cloud_init(boot, shell)
                if shell is not None and status is not None:
                    on_phase(
                        Phase.CHECKING, f"cloud-init {status} after {boot.cloud_init_at or 0:.0f} s"
                    )
                    self._check(boot, shell, status, disk)
                else:
                    failure = Verdict(
                        "cloud-init", f"cloud-init still running after {boot.timeout:g} s"
                    )
        finally:
            if shell is not None:
                shell.close()
        if failure is not None:
            boot.rows[failure.check] = CheckResult(
                failure.check, CheckStatus.FAILED, failure.detail
            )
        else:
            first = next((r for r in boot.rows.values() if r.status is CheckStatus.FAILED), None)
            failure = Verdict(first.name, first.detail) if first else None
        if failure is None:
            return None, ""
        return failure, self._console_tail(boot.machine_id)

    def _console_tail(self, machine_id: str, lines: int = 40) -> str:
        with contextlib.suppress(SlipwayError):
            return strip_colours(self._connector.console_log(machine_id, lines))
        return ""

    def _look(self, boot: _Boot) -> Machine:
        machine = self._connector.get_machine(boot.machine_id)
        boot.watch.see_console(
            self._connector.console_log(boot.machine_id, CONSOLE_LINES), self._now(boot)
        )
        if boot.watch.kernel_at is not None:
            boot.rows["boot"] = CheckResult(
                "boot", CheckStatus.OK, "the kernel started (it printed on the serial console)"
            )
        return machine

    def _wait_for_ssh(self, boot: _Boot) -> tuple[GuestShell | None, Verdict | None]:
        while True:
            machine = self._look(boot)
            if machine.state in (MachineState.ERROR, MachineState.STOPPED, MachineState.TERMINATED):
                said = f": {machine.cloud_message}" if machine.cloud_message else ""
                return None, Verdict("boot", f"the machine is {machine.state}{said}")
            if machine.state is MachineState.RUNNING and machine.address:
                login = self._guests.login(
                    machine.address, machine.ssh_port, boot.login_user, boot.key.private
                )
                now = self._now(boot)
                if login.shell is not None:
                    boot.ssh_at = now
                    boot.rows["ssh"] = CheckResult(
                        "ssh", CheckStatus.OK, f"logged in as {boot.login_user} after {now:.0f} s"
                    )
                    if boot.rows["boot"].status is not CheckStatus.OK:
                        boot.rows["boot"] = CheckResult("boot", CheckStatus.OK, "SSH answers")
                    return login.shell, None
                boot.watch.see_login(login.answered, login.problem, now)
            now = self._now(boot)
            verdict = boot.watch.verdict(now)
            if verdict is None and now >= boot.timeout:
                verdict = boot.watch.timed_out(boot.timeout)
            if verdict is not None:
                return None, verdict
            self._sleep(POLL_S)

    def _relogin(self, boot: _Boot) -> GuestShell | None:
        machine = self._connector.get_machine(boot.machine_id)
        if machine.state is not MachineState.RUNNING or not machine.address:
            return None
        login = self._guests.login(
            machine.address, machine.ssh_port, boot.login_user, boot.key.private
        )
        return login.shell

    def _wait_for_cloud_init(
        self, boot: _Boot, shell: GuestShell
    ) -> tuple[GuestShell | None, str | None]:
        """Until cloud-init is no longer running: its status word, or None at the timeout."""
        current: GuestShell | None = shell
        while True:
            left = boot.timeout - self._now(boot)
            if left <= 0:
                return current, None
            if current is None:
                self._sleep(POLL_S)
                current = self._relogin(boot)
                continue
            wait = max(1, min(CLOUD_INIT_WAIT_S, math.ceil(left)))
            out = current.run(f"timeout {wait} cloud-init status --wait", timeout=wait + 30)
            now = self._now(boot)
            if out.exit_status == -1:  # the connection dropped (a reboot?): log in again
                current.close()
                current = None
                continue
            if out.exit_status == 127:
                boot.cloud_init_at = None
                return current, "missing"
            status = cloud_init_status(out.stdout)
            if status is not None and status not in _STILL_RUNNING:
                seen = boot.watch.cloud_init_done_at
                boot.cloud_init_at = min(now, seen) if seen is not None else now
                return current, status

    def _check(self, boot: _Boot, shell: GuestShell, status: str, disk: int) -> None:
        script = checks_script(boot.login_user)
        out = shell.run(f"sudo -n sh -c {shlex.quote(script)}", timeout=120)
        sections = split_sections(out.stdout)
        boot.rows["cloud-init"] = _cloud_init_row(status, boot, sections.get("datasource", ""))
        results = evaluate(out.stdout, disk_bytes=disk, login_user=boot.login_user)
        if not sections:
            said = (out.stderr or out.stdout).strip()[:300] or f"exit status {out.exit_status}"
            why = "the connection dropped" if out.exit_status == -1 else "cannot run them as root"
            results = [CheckResult(r.name, CheckStatus.FAILED, f"{why}: {said}") for r in results]
        boot.rows.update((r.name, r) for r in results)
        if sections:
            out = shell.run(f"sudo -n sh -c {shlex.quote(profile_script())}", timeout=120)
            boot.profile = read_profile(out.stdout)

    # -- cleaning up -------------------------------------------------------------------

    def _clean_up(self, token: str, machine_id: str | None) -> None:
        """Delete the test's machine, and any other it may have made."""
        ids = {machine_id} if machine_id else set()
        with contextlib.suppress(SlipwayError):
            ids |= {m.id for m in self._connector.list_machines({TEST_TAG: token})}
        for found in sorted(ids):
            with contextlib.suppress(NotFound):
                self._connector.delete_machine(found)


def _cloud_init_row(status: str, boot: _Boot, status_json: str) -> CheckResult:
    if status == "done":
        return CheckResult("cloud-init", CheckStatus.OK, f"done after {boot.cloud_init_at:.0f} s")
    if status == "missing":
        return CheckResult("cloud-init", CheckStatus.FAILED, "cloud-init is not installed")
    if status == "disabled":
        return CheckResult("cloud-init", CheckStatus.FAILED, "cloud-init is disabled in this image")
    errors = cloud_init_errors(status_json)
    said = "; ".join(errors)[:500] if errors else "see /var/log/cloud-init.log"
    return CheckResult("cloud-init", CheckStatus.FAILED, f"finished with status {status}: {said}")
