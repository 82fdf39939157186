"""What the serial console says about a boot, and what to conclude from it
while SSH does not let us in yet.

Before a login works, the console is the only witness: the kernel's first
line, cloud-init's stage lines (its services write to the console as well as
the journal), systemd's ``[FAILED]`` lines and the login prompt. Signals are
sticky — once seen, they stay seen with the time they were first seen — so a
short console tail read every second misses nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["GRACE_S", "BootWatch", "Verdict", "strip_colours"]

GRACE_S = 60.0
"""Seconds to wait after the boot has clearly moved past a step that should
have happened before calling it missing. cloud-init's final stage runs after
multi-user.target, which waits for sshd to start; the login prompt comes long
after cloud-init's first stage. The grace covers a slow first answer on a
busy host (a first login took 9 s there)."""

# Colour codes, also those whose escape character systemd cut off with "…".
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|(?<=…)\[[0-9;]*m")
_KERNEL = re.compile(r"Linux version |^\[\s*\d+\.\d+\] ", re.MULTILINE)
_CLOUD_INIT_RAN = re.compile(r"Cloud-init v\. \S+ running '")
_CLOUD_INIT_DONE = re.compile(r"Cloud-init v\. \S+ finished at .*?Datasource (\S+)")
# systemd cuts long unit names ("ssh.servic…"), so only the start is matched.
_SSHD_FAILED = re.compile(r"Failed to start (?:open)?sshd?\b.*")
_LOGIN = re.compile(r"^\S+ login:", re.MULTILINE)


def strip_colours(text: str) -> str:
    """``text`` without terminal colour codes (systemd colours its status lines)."""
    return _ANSI.sub("", text)


@dataclass(frozen=True)
class Verdict:
    """The check that failed and why, in words a user can act on."""

    check: str
    detail: str


class BootWatch:
    """Follows one boot: feed it the console and each SSH attempt, ask it for
    a verdict. Times are seconds since the machine was started."""

    def __init__(self, grace: float = GRACE_S) -> None:
        self.grace = grace
        self.kernel_at: float | None = None
        self.cloud_init_at: float | None = None
        self.cloud_init_done_at: float | None = None
        self.datasource = ""
        self.login_prompt_at: float | None = None
        self.sshd_failed = ""
        self.ssh_answered_at: float | None = None
        self.ssh_problem = ""
        self._slow = False

    def see_console(self, text: str, now: float) -> None:
        """Take in the console's tail as read at ``now``."""
        text = strip_colours(text)
        if self.kernel_at is None and _KERNEL.search(text):
            self.kernel_at = now
        if self.cloud_init_at is None and _CLOUD_INIT_RAN.search(text):
            self.cloud_init_at = now
        done = _CLOUD_INIT_DONE.search(text)
        if done and self.cloud_init_done_at is None:
            self.cloud_init_done_at = now
            self.cloud_init_at = self.cloud_init_at if self.cloud_init_at is not None else now
            self.datasource = done.group(1).rstrip(".")
        if self.login_prompt_at is None and _LOGIN.search(text):
            self.login_prompt_at = now
        failed = _SSHD_FAILED.search(text)
        if failed and not self.sshd_failed:
            self.sshd_failed = failed.group(0).strip()

    def see_login(self, answered: bool, problem: str, now: float) -> None:
        """Take in a failed SSH attempt: ``answered`` when sshd spoke at all.
        A login that timed out says nothing yet about the key."""
        if answered and self.ssh_answered_at is None:
            self.ssh_answered_at = now
        self.ssh_problem = problem
        self._slow = answered and "timed out" in problem

    def _no_ssh(self, waited: str) -> Verdict:
        if self.ssh_answered_at is not None:
            return Verdict(
                "ssh",
                f"sshd answers but refused the login key {waited}: the login user "
                f"from the user data was not set up ({self.ssh_problem})",
            )
        failed = f"; the console says: {self.sshd_failed}" if self.sshd_failed else ""
        return Verdict(
            "ssh",
            f"nothing answered SSH on port 22 {waited} (is openssh-server installed "
            f"and enabled?){failed}",
        )

    def verdict(self, now: float) -> Verdict | None:
        """A failure already certain at ``now`` while nobody has logged in yet."""
        done = self.cloud_init_done_at
        if done is not None and now - done >= self.grace and not self._slow:
            return self._no_ssh(f"{now - done:.0f} s after cloud-init finished")
        if (
            self.cloud_init_at is None
            and self.login_prompt_at is not None
            and now - self.login_prompt_at >= self.grace
        ):
            return Verdict(
                "cloud-init",
                "cloud-init did not run: the boot reached its login prompt "
                f"{now - self.login_prompt_at:.0f} s ago without a line from cloud-init "
                "(not installed? disabled by /etc/cloud/cloud-init.disabled or "
                "cloud-init=disabled? no datasource found by ds-identify?)",
            )
        return None

    def timed_out(self, timeout: float) -> Verdict:
        """Why nobody could log in within ``timeout`` seconds."""
        waited = f"within {timeout:g} s"
        if self.kernel_at is None:
            return Verdict(
                "boot",
                f"nothing on the serial console {waited}: the image does not boot "
                "(boot loader, kernel) or does not write to ttyS0",
            )
        if self.cloud_init_at is None:
            if self.login_prompt_at is not None:
                return Verdict("cloud-init", f"cloud-init did not run {waited}")
            return Verdict(
                "boot", f"the boot reached neither cloud-init nor a login prompt {waited}"
            )
        verdict = self._no_ssh(waited)
        if self.cloud_init_done_at is None:
            return Verdict(verdict.check, verdict.detail + "; cloud-init had not finished either")
        return verdict
