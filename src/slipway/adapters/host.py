"""Checks of the host as a new user needs it (``slipway doctor``).

Each check looks at one thing — a tool, the accelerator, free space, a
service URL, the base image — and answers ok, warning or error with a hint a
user can act on. An error means the main job (``scripts/demo``: build the
base image, deploy it on the local cloud) cannot work here.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "HostCheck",
    "Status",
    "check_accelerators",
    "check_database",
    "check_free_space",
    "check_queue",
    "check_tool",
]


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True)
class HostCheck:
    name: str
    status: Status
    detail: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status.value, "detail": self.detail,
                "hint": self.hint}  # fmt: skip


def _find(tool: str) -> str | None:
    return shutil.which(tool) or shutil.which(tool, path="/usr/sbin:/sbin")


def _version(path: str) -> str:
    try:
        done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                              check=False)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0] if first else ""


def check_tool(tool: str, package: str, *, needed_for: str, blocking: bool) -> HostCheck:
    """``tool`` on the PATH (or in /usr/sbin, /sbin), with its version."""
    found = _find(tool)
    if found is None:
        return HostCheck(
            tool,
            Status.ERROR if blocking else Status.WARNING,
            f"not installed (needed for {needed_for})",
            f"apt-get install {package}",
        )
    version = _version(found) if tool.startswith("qemu") else ""
    return HostCheck(tool, Status.OK, version or found)


def check_accelerators(
    accelerators: set[str], choose: Callable[[], tuple[str, str]]
) -> list[HostCheck]:
    """That QEMU can run a guest at all (TCG is among its ``accelerators``), and
    which accelerator local machines get and why (``choose`` probes now)."""
    tcg = (
        HostCheck("software emulation (TCG)", Status.OK, "QEMU can run guests without KVM")
        if "tcg" in accelerators
        else HostCheck(
            "software emulation (TCG)",
            Status.ERROR,
            f"this QEMU lists no TCG accelerator ({', '.join(sorted(accelerators)) or 'none'})",
            "install Debian's qemu-system-x86, which has TCG",
        )
    )
    accel, reason = choose()
    hint = ""
    if accel == "tcg":
        hint = "machines run under software emulation: a Debian guest takes one to two minutes"
    return [tcg, HostCheck("accelerator", Status.OK, f"{accel}: {reason}", hint)]


def check_free_space(folder: Path, *, need_gib: float = 2.0, want_gib: float = 5.0) -> HostCheck:
    """Free space where the data folder lives (the base image, overlays, caches)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free / 1024**3
    detail = f"{free:.1f} GiB free in {probe}"
    if free < need_gib:
        return HostCheck("free space", Status.ERROR, detail,
                         f"the base image and a machine need about {need_gib:g} GiB")  # fmt: skip
    if free < want_gib:
        hint = f"more images and machines need more; {want_gib:g} GiB is comfortable"
        return HostCheck("free space", Status.WARNING, detail, hint)
    return HostCheck("free space", Status.OK, detail)


def check_database(url: str, connect: Callable[[str], None]) -> HostCheck:
    """``connect(url)`` opens the store and runs a query; its error is the detail."""
    shown = _without_password(url)
    try:
        connect(url)
    except Exception as exc:  # every driver has its own errors; all mean "not reachable"
        return HostCheck("database", Status.ERROR, f"{shown}: {_first_line(exc)}",
                         "check database_url (slipway --help lists the settings)")  # fmt: skip
    return HostCheck("database", Status.OK, shown)


def check_queue(url: str, ping: Callable[[str], None]) -> HostCheck:
    shown = _without_password(url)
    try:
        ping(url)
    except Exception as exc:  # as for the database
        hint = "check queue_url; on one machine the default SQLite file needs no server"
        return HostCheck("task queue", Status.ERROR, f"{shown}: {_first_line(exc)}", hint)
    return HostCheck("task queue", Status.OK, shown)


def _without_password(url: str) -> str:
    return re.sub(r"(//[^:/@]+):[^@/]*@", r"\1:***@", url)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
