"""What the installed system exposes on the network: sshd's settings, the
firewall (IPv4 and IPv6) and the network services enabled at boot."""

from __future__ import annotations

import fnmatch
import re

from slipway.imagekit.checks.rootfs import RootView
from slipway.imagekit.checks.system import cloud_config, enabled_units
from slipway.imagekit.findings import Finding

__all__ = ["check_firewall", "check_services", "check_sshd"]

_NETWORK_DAEMONS = (
    "apache2",
    "httpd",
    "nginx",
    "lighttpd",
    "mysql",
    "mysqld",
    "mariadb",
    "postgresql",
    "redis",
    "redis-server",
    "memcached",
    "mongod",
    "rpcbind",
    "nfs-server",
    "nfs-kernel-server",
    "smbd",
    "nmbd",
    "samba",
    "vsftpd",
    "proftpd",
    "pure-ftpd",
    "telnet",
    "inetd",
    "xinetd",
    "openbsd-inetd",
    "inetutils-inetd",
    "avahi-daemon",
    "cups",
    "cups-browsed",
    "snmpd",
    "exim4",
    "postfix",
    "sendmail",
    "dovecot",
    "bind9",
    "named",
    "dnsmasq",
    "rsync",
    "docker",
    "cockpit",
    "webmin",
    "ntp",
    "ntpsec",
    "squid",
    "haproxy",
    "tomcat9",
    "tomcat10",
    "jenkins",
    "elasticsearch",
    "rabbitmq-server",
    "x11vnc",
    "xrdp",
    "telnetd",
    "tftpd-hpa",
    "isc-dhcp-server",
    "slapd",
    "grafana-server",
    "prometheus",
)


def check_sshd(view: RootView) -> list[Finding]:
    """Effective PermitRootLogin and PasswordAuthentication (first value wins, as sshd)."""
    if view.file("/etc/ssh/sshd_config") is None:
        return []
    settings: dict[str, tuple[str, str]] = {}
    _read_sshd(view, "/etc/ssh/sshd_config", settings, depth=0)
    findings: list[Finding] = []
    root = settings.get("permitrootlogin")
    if root and root[0].lower() == "yes":
        findings.append(
            Finding("sshd.root-login", f"PermitRootLogin yes in {root[1]}", view.evidence(root[1]))
        )
    password = settings.get("passwordauthentication")
    pwauth = cloud_config(view).get("ssh_pwauth")
    cloud_init_off = pwauth is False or str(pwauth).lower() in ("no", "false", "0")
    if password and password[0].lower() == "yes":
        findings.append(
            Finding(
                "sshd.password-login",
                f"PasswordAuthentication yes in {password[1]}",
                view.evidence(password[1]),
            )
        )
    elif password is None and not cloud_init_off:
        findings.append(
            Finding(
                "sshd.password-login",
                "PasswordAuthentication is not set "
                "(sshd's default is yes) and cloud-init's ssh_pwauth is not "
                "false",
                view.evidence("/etc/ssh/sshd_config"),
            )
        )
    return findings


def _read_sshd(view: RootView, path: str, settings: dict[str, tuple[str, str]], depth: int) -> None:
    if depth > 8:
        return
    for line in (view.text(path) or "").splitlines():
        parts = line.strip().split(None, 1)
        if not parts or parts[0].startswith("#"):
            continue
        key = parts[0].lower()
        value = parts[1].strip() if len(parts) > 1 else ""
        if key == "match":
            return  # conditional blocks do not set the defaults
        if key == "include":
            for pattern in value.split():
                pattern = pattern if pattern.startswith("/") else f"/etc/ssh/{pattern}"
                matches = sorted(p for p in view.entries if fnmatch.fnmatch(p, pattern))
                view.prefetch(matches)
                for match in matches:
                    _read_sshd(view, match, settings, depth + 1)
            continue
        settings.setdefault(key, (value.split()[0] if value else "", path))


def check_firewall(view: RootView) -> list[Finding]:
    """Rules for IPv4 and IPv6 from nftables, iptables-persistent, ufw or firewalld."""
    enabled = {e.name for e in enabled_units(view)}
    configured: list[tuple[str, bool]] = []  # (where, restrictive)
    nft = view.text("/etc/nftables.conf")
    if nft is not None and "nftables.service" in enabled:
        restrictive = bool(re.search(r"policy\s+drop|\bdrop\b|\breject\b", nft))
        configured.append(("/etc/nftables.conf", restrictive))
    for path in (
        "/etc/iptables/rules.v4",
        "/etc/iptables/rules.v6",
        "/etc/sysconfig/iptables",
        "/etc/sysconfig/ip6tables",
    ):
        text = view.text(path)
        if text is not None:
            restrictive = bool(re.search(r":INPUT DROP|-j (DROP|REJECT)", text))
            configured.append((path, restrictive))
    ufw = view.text("/etc/ufw/ufw.conf") or ""
    if re.search(r"^ENABLED=yes", ufw, re.MULTILINE):
        default = view.text("/etc/default/ufw") or ""
        configured.append(
            ("/etc/ufw/ufw.conf", bool(re.search(r'DEFAULT_INPUT_POLICY="(DROP|REJECT)"', default)))
        )
    if "firewalld.service" in enabled:
        configured.append(("firewalld.service", True))
    if not configured:
        return [
            Finding(
                "firewall.none",
                "no nftables, iptables, ufw or firewalld rules are enabled",
                view.evidence("/etc"),
            )
        ]
    return [
        Finding("firewall.open", f"{where} accepts everything", view.evidence(where))
        for where, restrictive in configured
        if not restrictive
    ]


def check_services(view: RootView) -> list[Finding]:
    findings: list[Finding] = []
    seen: set[str] = set()
    for entry in sorted(enabled_units(view), key=lambda e: e.path):
        base = entry.name.rsplit(".", 1)[0].split("@", 1)[0]
        if base in _NETWORK_DAEMONS and base not in seen:
            seen.add(base)
            findings.append(
                Finding(
                    "services.network",
                    f"{entry.name} is enabled",
                    view.evidence(entry.path, unit=entry.name),
                )
            )
    for entry in view.glob("/etc/rc[2345].d/S*"):
        base = entry.name[3:]
        if base in _NETWORK_DAEMONS and base not in seen:
            seen.add(base)
            findings.append(
                Finding(
                    "services.network",
                    f"{base} starts at boot (SysV)",
                    view.evidence(entry.path, unit=base),
                )
            )
    return findings
