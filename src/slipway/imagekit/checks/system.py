"""How the installed system will behave at boot: cloud-init, swap and /boot in
fstab, logs, state and stray large files."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import yaml

from slipway.imagekit.checks.rootfs import RootView
from slipway.imagekit.findings import Finding

__all__ = [
    "LARGE_FILE",
    "check_boot_config",
    "check_cloud_init",
    "check_large_files",
    "check_state",
    "cloud_config",
    "enabled_units",
    "log_files",
]

LARGE_FILE = 64 * 1024 * 1024  # bytes
_USUAL_SOURCES = {
    "nocloud",
    "configdrive",
    "openstack",
    "ec2",
    "gce",
    "azure",
    "oracle",
    "exoscale",
    "cloudstack",
    "opennebula",
    "scaleway",
    "hetzner",
}
_CLOUD_INIT_UNITS = (
    "cloud-init.service",
    "cloud-init-local.service",
    "cloud-init.target",
    "cloud-config.service",
    "cloud-final.service",
)


# Daemons that listen on the network when enabled (sshd is the one that may).
def check_cloud_init(view: RootView) -> list[Finding]:
    installed = view.exists("/usr/bin/cloud-init") or "Package: cloud-init\n" in (
        view.text("/var/lib/dpkg/status") or ""
    )
    if not installed:
        return [
            Finding(
                "cloudinit.missing",
                "no /usr/bin/cloud-init and no cloud-init package",
                view.evidence("/usr/bin/cloud-init"),
            )
        ]
    findings: list[Finding] = []
    if view.exists("/etc/cloud/cloud-init.disabled"):
        findings.append(
            Finding(
                "cloudinit.disabled",
                "/etc/cloud/cloud-init.disabled exists",
                view.evidence("/etc/cloud/cloud-init.disabled"),
            )
        )
    elif not any(e.name in _CLOUD_INIT_UNITS for e in enabled_units(view)):
        findings.append(
            Finding(
                "cloudinit.disabled",
                "no cloud-init unit is enabled in /etc/systemd/system",
                view.evidence("/etc/systemd/system"),
            )
        )
    config = cloud_config(view)
    sources = config.get("datasource_list")
    if isinstance(sources, list) and sources:
        names = [str(s) for s in sources]
        findings.append(
            Finding(
                "cloudinit.datasources",
                ", ".join(names),
                view.evidence("/etc/cloud", datasources=names),
            )
        )
        if not {n.lower() for n in names} & _USUAL_SOURCES:
            findings.append(
                Finding(
                    "cloudinit.datasources-narrow",
                    ", ".join(names),
                    view.evidence("/etc/cloud", datasources=names),
                )
            )
    else:
        findings.append(
            Finding(
                "cloudinit.datasources",
                "not set: cloud-init detects the datasource itself (ds-identify)",
                view.evidence("/etc/cloud"),
            )
        )
    return findings


def cloud_config(view: RootView) -> dict[str, Any]:
    """cloud.cfg merged with cloud.cfg.d/*.cfg in name order (top-level keys, last wins)."""
    paths = ["/etc/cloud/cloud.cfg", *(e.path for e in view.glob("/etc/cloud/cloud.cfg.d/*.cfg"))]
    view.prefetch(paths)
    merged: dict[str, Any] = {}
    for path in paths:
        try:
            data = yaml.safe_load(view.text(path) or "")
        except yaml.YAMLError:
            continue
        if isinstance(data, dict):
            merged.update(data)
    return merged


def enabled_units(view: RootView) -> Iterator[Any]:
    for entry in view.under("/etc/systemd/system"):
        parent = entry.path.rsplit("/", 2)[-2]
        if parent.endswith((".wants", ".requires")):
            yield entry


def check_boot_config(view: RootView) -> list[Finding]:
    """Swap and a separate /boot as /etc/fstab and the root filesystem show them."""
    findings: list[Finding] = []
    for line in (view.text("/etc/fstab") or "").splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0].startswith("#"):
            continue
        if fields[2] == "swap":
            findings.append(
                Finding(
                    "layout.swap-fstab",
                    line.strip(),
                    view.evidence("/etc/fstab", line=line.strip()),
                )
            )
        elif fields[1] == "/boot":
            findings.append(
                Finding(
                    "layout.separate-boot",
                    f"/etc/fstab mounts /boot: {line.strip()}",
                    view.evidence("/etc/fstab"),
                )
            )
    candidates = [
        e.path
        for e in view.entries.values()
        if e.is_file
        and e.size >= 1024 * 1024
        and (e.path.count("/") == 1 or "swap" in e.name.lower())
    ]
    for path, block in view.first_block(candidates).items():
        if block[4086:4096] in (b"SWAPSPACE2", b"SWAP-SPACE"):
            findings.append(
                Finding("layout.swap-file", f"{path} is a swap file", view.evidence(path))
            )
    return findings


def log_files(view: RootView) -> list[str]:
    """Non-empty regular files under /var/log."""
    return sorted(e.path for e in view.under("/var/log") if e.is_file and e.size > 0)


def check_state(view: RootView) -> list[Finding]:
    """cloud-init state and logs from an earlier boot or the build."""
    findings: list[Finding] = []
    state = [e for e in view.under("/var/lib/cloud") if not e.is_dir]
    if state:
        findings.append(
            Finding(
                "cloudinit.state",
                f"{len(state)} files under /var/lib/cloud",
                view.evidence("/var/lib/cloud", files=len(state)),
            )
        )
    logs = log_files(view)
    if logs:
        total = sum(view.entries[p].size for p in logs)
        findings.append(
            Finding(
                "logs.present",
                f"{len(logs)} log files, {total} bytes",
                view.evidence("/var/log", files=len(logs), size=total, examples=logs[:5]),
            )
        )
    return findings


def check_large_files(view: RootView, exclude: set[str]) -> list[Finding]:
    large = [
        e
        for e in view.entries.values()
        if e.is_file and e.size > LARGE_FILE and e.path not in exclude
    ]
    if not large:
        return []
    owned = _dpkg_owned(view)
    return [
        Finding(
            "files.large-unowned",
            f"{e.path} ({e.size} bytes) belongs to no package",
            view.evidence(e.path),
        )
        for e in sorted(large, key=lambda e: e.path)
        if e.path not in owned
    ]


def _dpkg_owned(view: RootView) -> set[str]:
    lists = [e.path for e in view.glob("/var/lib/dpkg/info/*.list")]
    view.prefetch(lists)
    owned: set[str] = set()
    for path in lists:
        owned.update((view.text(path) or "").splitlines())
    # merged /usr: packages list /bin/x, the file lives at /usr/bin/x
    owned.update("/usr" + p for p in list(owned) if p.startswith(("/bin/", "/sbin/", "/lib")))
    return owned
