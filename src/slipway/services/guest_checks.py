"""The checks ``image test`` runs inside a booted image, and how their output
is read.

One shell script, run as root over SSH, prints a section per check
(``@@ <name>`` then what the guest said); each ``check_*`` function turns its
section into a :class:`CheckResult`. The parsers take plain text so that
tests can feed them canned output.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "GROWN_FRACTION",
    "GUEST_CHECKS",
    "CheckResult",
    "CheckStatus",
    "check_datasource",
    "check_failed_units",
    "check_firewall",
    "check_host_keys",
    "check_password",
    "check_root_fs",
    "checks_script",
    "cloud_init_errors",
    "cloud_init_status",
    "evaluate",
    "split_sections",
]

GIB = 1024**3
GROWN_FRACTION = 0.9
"""``/`` counts as grown when it is at least this share of the disk: ext4's
own metadata takes ~3 %, and the test disk is made big enough that an ungrown
file system stays below it (see ``boottest.disk_bytes``)."""

GUEST_CHECKS = ("root-fs", "failed-units", "host-keys", "datasource", "firewall", "no-password")
"""The names of the in-guest checks, in the order they are reported."""

_MARK = "@@ "
_UNIT = re.compile(
    r"\S+\.(service|socket|mount|timer|target|path|scope|slice|swap|device|automount)$"
)


class CheckStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report: a check's name, its outcome, what was seen."""

    name: str
    status: CheckStatus
    detail: str

    @property
    def ok(self) -> bool:
        return self.status is CheckStatus.OK

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "status": self.status.value, "detail": self.detail}


def _ok(name: str, detail: str) -> CheckResult:
    return CheckResult(name, CheckStatus.OK, detail)


def _failed(name: str, detail: str) -> CheckResult:
    return CheckResult(name, CheckStatus.FAILED, detail)


def checks_script(login_user: str) -> str:
    """The shell script (run as root) whose output :func:`evaluate` reads."""
    user = shlex.quote(login_user)
    return f"""\
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
echo '@@ root-fs'; df -B1 --output=size,source / 2>&1
echo '@@ failed-units'; systemctl --failed --no-legend --plain 2>&1
echo '@@ host-keys'; sed -n 's/^btime //p' /proc/stat
for k in /etc/ssh/ssh_host_*_key; do [ -e "$k" ] && stat -c '%Y %n' "$k"; done
echo '@@ datasource'; cat /run/cloud-init/status.json 2>&1
echo '@@ firewall'
if command -v ufw >/dev/null 2>&1; then echo 'tool ufw'; ufw status 2>&1
elif command -v firewall-cmd >/dev/null 2>&1; then echo 'tool firewalld'; firewall-cmd --state 2>&1
elif command -v nft >/dev/null 2>&1; then echo 'tool nftables'
  echo "unit $(systemctl is-active nftables.service 2>&1)"; nft -j list ruleset 2>&1
elif command -v iptables >/dev/null 2>&1; then echo 'tool iptables'
  iptables -S INPUT 2>&1; ip6tables -S INPUT 2>&1
else echo 'tool none'; fi
echo '@@ no-password'; getent shadow {user}
"""


def split_sections(output: str) -> dict[str, str]:
    """The script's output as check name -> that section's text."""
    sections: dict[str, str] = {}
    name: str | None = None
    lines: list[str] = []
    for line in output.splitlines():
        if line.startswith(_MARK):
            if name is not None:
                sections[name] = "\n".join(lines)
            name, lines = line[len(_MARK) :].strip(), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        sections[name] = "\n".join(lines)
    return sections


def _gib(size: float) -> str:
    return f"{size / GIB:.2f} GiB"


def check_root_fs(text: str, disk_bytes: int) -> CheckResult:
    """``df -B1 --output=size,source /``: did / grow to the disk (bytes)?"""
    rows = [line.split() for line in text.splitlines()[1:] if line.split()]
    if not rows or not rows[0][0].isdigit():
        return _failed("root-fs", f"cannot read the size of /: {text.strip()[:200] or 'no output'}")
    size = int(rows[0][0])
    source = rows[0][1] if len(rows[0]) > 1 else "?"
    seen = f"/ ({source}) is {_gib(size)} on a {_gib(disk_bytes)} disk"
    if size >= GROWN_FRACTION * disk_bytes:
        return _ok("root-fs", f"{seen}: grown at first boot")
    return _failed(
        "root-fs",
        f"{seen}: it did not grow to the disk (growpart and resize2fs: "
        "cloud-guest-utils installed, cloud-init's growpart and resizefs modules enabled?)",
    )


def check_failed_units(text: str) -> CheckResult:
    """``systemctl --failed --no-legend --plain``: one line per failed unit."""
    units = []
    for line in text.splitlines():
        words = [w for w in line.split() if w not in ("●", "*")]
        if words and _UNIT.match(words[0]):
            units.append(words[0])
        elif words:
            return _failed("failed-units", f"cannot ask systemd: {line.strip()[:200]}")
    if units:
        return _failed("failed-units", f"failed: {', '.join(units)}")
    return _ok("failed-units", "no failed systemd units")


def check_host_keys(text: str) -> CheckResult:
    """The boot time (``btime`` of /proc/stat, epoch seconds), then ``<mtime> <path>``
    per host private key: every key must have been written at this boot."""
    lines = [line.split(maxsplit=1) for line in text.splitlines() if line.strip()]
    if not lines or not lines[0][0].isdigit():
        return _failed("host-keys", "cannot read the boot time of the guest")
    boot = int(lines[0][0])
    keys = {path: int(mtime) for mtime, path in (p for p in lines[1:] if len(p) == 2)}
    if not keys:
        return _failed("host-keys", "no SSH host keys in /etc/ssh")
    older = sorted(path for path, mtime in keys.items() if mtime < boot)
    if older:
        return _failed(
            "host-keys",
            f"{', '.join(older)} older than this boot: baked into the image, shared by "
            "every machine made from it (remove them; cloud-init's ssh_deletekeys)",
        )
    kinds = ", ".join(sorted(_key_type(p) for p in keys))
    latest = max(keys.values()) - boot
    return _ok("host-keys", f"{kinds} generated at this boot ({latest} s after it began)")


def _key_type(path: str) -> str:
    name = path.rsplit("/", 1)[-1]
    return name.removeprefix("ssh_host_").removesuffix("_key")


def _status_json(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    v1 = data.get("v1") if isinstance(data, dict) else None
    return v1 if isinstance(v1, dict) else None


def check_datasource(text: str) -> CheckResult:
    """cloud-init's ``status.json``: the datasource it found."""
    status = _status_json(text)
    if status is None:
        return _failed("datasource", f"no cloud-init status: {text.strip()[:200] or 'empty'}")
    source = str(status.get("datasource") or "")
    if source.startswith("DataSourceNoCloud"):
        return _ok("datasource", source)
    if not source or source.startswith("DataSourceNone"):
        return _failed(
            "datasource",
            f"cloud-init found no datasource ({source or 'none'}): NoCloud missing "
            "from datasource_list, or the seed disk (label cidata) was not read",
        )
    return _failed("datasource", f"cloud-init used {source}, not the NoCloud seed it was given")


def cloud_init_errors(text: str) -> list[str]:
    """The errors every stage of ``status.json`` recorded."""
    status = _status_json(text) or {}
    found: list[str] = []
    for stage, record in sorted(status.items()):
        if isinstance(record, dict):
            found += [f"{stage}: {error}" for error in record.get("errors") or []]
    return found


def cloud_init_status(text: str) -> str | None:
    """The word of ``cloud-init status [--wait]``'s ``status:`` line (done,
    running, error, disabled, ``not run`` …); ``degraded`` when an
    ``extended_status`` says so; ``None`` when there is no such line."""
    status = None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        word = key.strip(" .")
        if word == "status":
            status = value.strip()
        elif word == "extended_status" and "degraded" in value:
            return "degraded"
    return status


def _nft_firewall(lines: list[str]) -> CheckResult:
    unit = next((line[5:].strip() for line in lines if line.startswith("unit ")), "unknown")
    raw = "\n".join(line for line in lines if not line.startswith(("unit ", "tool ")))
    try:
        items = json.loads(raw).get("nftables", [])
    except (ValueError, AttributeError):
        return _failed("firewall", f"nftables ({unit}): cannot read its rules: {raw[:200]}")
    drops: set[str] = set()
    for item in items:
        chain = item.get("chain") if isinstance(item, dict) else None
        if chain and chain.get("hook") == "input" and chain.get("policy") == "drop":
            drops.add(chain.get("family", ""))
    families = {
        "IPv4": bool(drops & {"inet", "ip"}),
        "IPv6": bool(drops & {"inet", "ip6"}),
    }
    open_families = [name for name, closed in families.items() if not closed]
    if not open_families:
        return _ok("firewall", f"nftables ({unit}): input policy drop for IPv4 and IPv6")
    if not drops:
        return _failed(
            "firewall",
            f"nftables ({unit}): no input chain with policy drop: the firewall lets "
            "everything in (is nftables.service enabled, /etc/nftables.conf loaded?)",
        )
    return _failed(
        "firewall", f"nftables ({unit}): {' and '.join(open_families)} input is not filtered"
    )


def _iptables_firewall(lines: list[str]) -> CheckResult:
    policies = [line for line in lines if line.startswith("-P INPUT")]
    if len(policies) == 2 and all(p.split()[-1] in ("DROP", "REJECT") for p in policies):
        return _ok("firewall", "iptables: input policy DROP for IPv4 and IPv6")
    return _failed("firewall", f"iptables: input policies {', '.join(policies) or 'unknown'}")


def check_firewall(text: str) -> CheckResult:
    """The firewall the image has, as it reports itself (ufw, firewalld,
    nftables or iptables, looked for in that order)."""
    lines = text.splitlines()
    tool = next((line[5:].strip() for line in lines if line.startswith("tool ")), "none")
    rest = [line for line in lines if not line.startswith("tool ")]
    said = " ".join(rest).strip()[:200]
    if tool == "ufw":
        if any(line.strip().lower() == "status: active" for line in rest):
            return _ok("firewall", "ufw: Status: active")
        return _failed("firewall", f"ufw is installed but not active: {said}")
    if tool == "firewalld":
        if said == "running":
            return _ok("firewall", "firewalld: running")
        return _failed("firewall", f"firewalld is installed but not running: {said}")
    if tool == "nftables":
        return _nft_firewall(lines)
    if tool == "iptables":
        return _iptables_firewall(rest)
    return _failed(
        "firewall",
        "no firewall: neither ufw, firewalld, nftables nor iptables is installed "
        "(the guidelines want one, minimally open, for IPv4 and IPv6)",
    )


def check_password(text: str, login_user: str) -> CheckResult:
    """``getent shadow USER``: the password field must be only ``!`` and ``*``."""
    fields = text.strip().split(":")
    if len(fields) < 2 or fields[0] != login_user:
        return _failed("no-password", f"{login_user} has no entry in /etc/shadow")
    secret = fields[1]
    if secret and not secret.strip("!*"):
        return _ok("no-password", f"{login_user}: no password ({secret!r} in /etc/shadow)")
    if not secret:
        return _failed(
            "no-password", f"{login_user} has an empty password: anyone may log in as it"
        )
    locked = " (locked, but the hash is there)" if secret[0] in "!*" else ""
    return _failed("no-password", f"{login_user} has a password hash in /etc/shadow{locked}")


def evaluate(output: str, *, disk_bytes: int, login_user: str) -> list[CheckResult]:
    """Every in-guest check, read from the output of :func:`checks_script`."""
    sections = split_sections(output)
    readers: dict[str, Callable[[str], CheckResult]] = {
        "root-fs": lambda text: check_root_fs(text, disk_bytes),
        "failed-units": check_failed_units,
        "host-keys": check_host_keys,
        "datasource": check_datasource,
        "firewall": check_firewall,
        "no-password": lambda text: check_password(text, login_user),
    }
    results = []
    for name in GUEST_CHECKS:
        read = readers[name]
        if name in sections:
            results.append(read(sections[name]))
        else:
            results.append(_failed(name, "the check did not run (no output from the guest)"))
    return results
