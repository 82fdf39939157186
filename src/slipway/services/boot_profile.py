"""Where a boot's time went, as ``image test`` reports it to image authors.

Read inside the guest once cloud-init is done: ``systemd-analyze time``
(kernel, initrd, user space), the slowest units of ``systemd-analyze
blame`` and the slowest cloud-init modules of ``cloud-init analyze blame``.
The parsers take plain text so that tests can feed them canned output; a
guest without one of the tools simply has no such part in its profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TOP",
    "BootProfile",
    "Cost",
    "parse_cloud_init_blame",
    "parse_duration",
    "parse_startup",
    "parse_systemd_blame",
    "profile_script",
    "read_profile",
]

TOP = 8
"""How many units and cloud-init modules a profile keeps, slowest first."""

_MARK = "@@ "
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(min|ms|us|µs|s|h)\b")
_UNITS_S = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_STARTUP_PART = re.compile(r"([0-9.hmins µ]+?)\s+\((kernel|initrd|userspace|firmware|loader)\)")
_CLOUD_INIT_ROW = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s+\(([^)]+)\)\s*$")


@dataclass(frozen=True)
class Cost:
    """One thing that took time during the boot: ``seconds`` and its name."""

    name: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "seconds": self.seconds}


@dataclass(frozen=True)
class BootProfile:
    """Seconds per boot stage (``kernel``, ``initrd``, ``userspace``) and the
    slowest systemd units and cloud-init modules, slowest first."""

    stages: tuple[Cost, ...] = ()
    units: tuple[Cost, ...] = ()
    cloud_init: tuple[Cost, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "stages": [c.to_dict() for c in self.stages],
            "units": [c.to_dict() for c in self.units],
            "cloud_init": [c.to_dict() for c in self.cloud_init],
        }


def profile_script() -> str:
    """The shell script (run as root) whose output :func:`read_profile` reads."""
    return (
        "export SYSTEMD_PAGER= SYSTEMD_COLORS=0\n"
        "echo '@@ startup'; systemd-analyze time 2>&1\n"
        "echo '@@ units'; systemd-analyze blame 2>&1 | head -n 40\n"
        "echo '@@ cloud-init'; cloud-init analyze blame 2>&1 | head -n 60\n"
    )


def parse_duration(text: str) -> float | None:
    """systemd's ``1min 2.345s`` / ``812ms`` / ``2h 3min`` in seconds, or None."""
    parts = _DURATION_PART.findall(text)
    if not parts or _DURATION_PART.sub("", text).strip():
        return None
    return round(sum(float(n) * _UNITS_S[unit] for n, unit in parts), 3)


def parse_startup(text: str) -> tuple[Cost, ...]:
    """The stages of ``systemd-analyze time``'s "Startup finished in …" line."""
    for line in text.splitlines():
        if line.startswith("Startup finished in"):
            found = []
            for duration, stage in _STARTUP_PART.findall(line.split(" in ", 1)[1]):
                seconds = parse_duration(duration.strip())
                if seconds is not None:
                    found.append(Cost(stage, seconds))
            return tuple(found)
    return ()


def parse_systemd_blame(text: str, top: int = TOP) -> tuple[Cost, ...]:
    """The ``top`` slowest units of ``systemd-analyze blame``."""
    found = []
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        name = fields[-1]
        seconds = parse_duration(" ".join(fields[:-1]))
        if seconds is not None and "." in name:
            found.append(Cost(name, seconds))
    return tuple(sorted(found, key=lambda c: -c.seconds)[:top])


def parse_cloud_init_blame(text: str, top: int = TOP) -> tuple[Cost, ...]:
    """The ``top`` slowest modules of the first boot record of
    ``cloud-init analyze blame`` (rows like ``  05.12300s (init-network/config-ssh)``)."""
    found = []
    records = 0
    for line in text.splitlines():
        if line.strip().startswith("-- Boot Record"):
            records += 1
            if records > 1:
                break
            continue
        row = _CLOUD_INIT_ROW.match(line)
        if row:
            found.append(Cost(row.group(2), round(float(row.group(1)), 3)))
    return tuple(sorted(found, key=lambda c: -c.seconds)[:top])


def read_profile(output: str, top: int = TOP) -> BootProfile:
    """The profile in the output of :func:`profile_script`."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in output.splitlines():
        if line.startswith(_MARK):
            current = sections.setdefault(line[len(_MARK) :].strip(), [])
        elif current is not None:
            current.append(line)
    return BootProfile(
        stages=parse_startup("\n".join(sections.get("startup", []))),
        units=parse_systemd_blame("\n".join(sections.get("units", [])), top),
        cloud_init=parse_cloud_init_blame("\n".join(sections.get("cloud-init", [])), top),
    )
