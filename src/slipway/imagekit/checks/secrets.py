"""Credentials left in an image: accounts, keys, histories, cloud credentials, ids."""

from __future__ import annotations

import re
from collections.abc import Iterator

from slipway.imagekit.checks.rootfs import SMALL_FILE, RootView
from slipway.imagekit.findings import Finding

__all__ = ["HISTORY_NAMES", "check_accounts", "check_secrets", "host_keys", "key_candidates"]

HISTORY_NAMES = frozenset(
    {
        ".bash_history",
        ".zsh_history",
        ".sh_history",
        ".ash_history",
        ".history",
        ".histfile",
        ".python_history",
        ".mysql_history",
        ".psql_history",
        ".sqlite_history",
        ".node_repl_history",
        ".rediscli_history",
        ".lesshst",
        ".viminfo",
    }
)
_KEY_NAMES = frozenset(
    {"id_rsa", "id_dsa", "id_ecdsa", "id_ed25519", "id_ecdsa_sk", "id_ed25519_sk", "identity"}
)
_KEY_HEADER = re.compile(rb"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----|PuTTY-User-Key-File-")
_NOLOGIN = ("nologin", "false", "sync", "halt", "shutdown", "true")
_PACKAGED = ("/usr/", "/proc/", "/sys/", "/dev/")
_SECRET_KEYS = re.compile(
    r"^\s*(password|application_credential_secret|token|secret|client_secret)\s*:\s*\S",
    re.MULTILINE,
)


def _user_data(view: RootView) -> Iterator[str]:
    """Paths outside packaged trees (where people and builds leave files)."""
    for path, entry in view.entries.items():
        if entry.is_file and not path.startswith(_PACKAGED):
            yield path


def host_keys(view: RootView) -> list[str]:
    """SSH host private keys (/etc/ssh/ssh_host_*_key)."""
    return [e.path for e in view.glob("/etc/ssh/ssh_host_*key") if e.is_file]


def key_candidates(view: RootView) -> list[str]:
    """Small files in home directories, /root and /etc that may hold a private key."""
    hosts = set(host_keys(view))
    return [
        e.path
        for e in view.under("/home", "/root", "/etc")
        if e.is_file and 0 < e.size <= SMALL_FILE and e.path not in hosts
    ]


def check_accounts(view: RootView) -> list[Finding]:
    """Password hashes, empty passwords and login accounts besides the system ones."""
    findings: list[Finding] = []
    passwd = _table(view.text("/etc/passwd"))
    shadow = _table(view.text("/etc/shadow"))
    uid_min = _login_defs(view.text("/etc/login.defs"), "UID_MIN", 1000)
    for source, table in (("/etc/shadow", shadow), ("/etc/passwd", passwd)):
        for user, fields in table.items():
            secret = fields[0] if fields else ""
            if source == "/etc/passwd" and (secret == "x" or user in shadow):
                continue
            evidence = view.evidence(source, account=user)
            if secret == "":
                findings.append(
                    Finding(
                        "accounts.empty-password",
                        f"{user} has an empty password in {source}",
                        evidence,
                    )
                )
            elif len(secret.lstrip("!*")) > 1:
                locked = (
                    " (locked, but the hash is still in the image)" if secret[0] in "!*" else ""
                )
                findings.append(
                    Finding(
                        "accounts.password-hash",
                        f"{user} has a password hash in {source}{locked}",
                        evidence,
                    )
                )
    for user, fields in passwd.items():
        if len(fields) < 6:
            continue
        uid, shell = _int(fields[1]), fields[5]
        if shell.rsplit("/", 1)[-1] in _NOLOGIN or not shell:
            continue
        extra_root = uid == 0 and user != "root"
        if extra_root or (uid is not None and uid_min <= uid < 65534):
            findings.append(
                Finding(
                    "accounts.login-account",
                    f"{user} (uid {uid}) can log in with {shell}",
                    view.evidence("/etc/passwd", account=user, uid=uid),
                )
            )
    return findings


def check_secrets(view: RootView) -> list[Finding]:
    """Keys, authorized_keys, histories, cloud credentials and machine ids."""
    findings: list[Finding] = []
    for path in host_keys(view):
        findings.append(Finding("ssh.host-keys", f"SSH host key {path}", view.evidence(path)))
    for entry in view.named({"authorized_keys", "authorized_keys2"}):
        if entry.is_file and entry.size > 0:
            findings.append(
                Finding(
                    "ssh.authorized-keys",
                    f"{entry.path} grants SSH access",
                    view.evidence(entry.path),
                )
            )
    for entry in view.under("/etc/ssh/authorized_keys"):
        if entry.is_file and entry.size > 0:
            findings.append(
                Finding(
                    "ssh.authorized-keys",
                    f"{entry.path} grants SSH access",
                    view.evidence(entry.path),
                )
            )
    findings.extend(_private_keys(view))
    for path in _user_data(view):
        entry = view.entries[path]
        if entry.name in HISTORY_NAMES and entry.size > 0:
            findings.append(
                Finding("secrets.shell-history", f"history file {path}", view.evidence(path))
            )
    findings.extend(_cloud_credentials(view))
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        content = (view.text(path) or "").strip()
        if content and content != "uninitialized":
            findings.append(
                Finding("identity.machine-id", f"{path} holds {content[:32]}", view.evidence(path))
            )
    return findings


def _private_keys(view: RootView) -> Iterator[Finding]:
    hosts = set(host_keys(view))
    reported: set[str] = set()
    for path in _user_data(view):
        name = path.rsplit("/", 1)[-1]
        if path not in hosts and (name in _KEY_NAMES or name.endswith(".ppk")):
            reported.add(path)
            yield Finding(
                "secrets.private-key",
                f"{path} is named like a private key",
                view.evidence(path, found_by="name"),
            )
    for path in key_candidates(view):
        if path in reported:
            continue
        data = view.read(path) or b""
        if _KEY_HEADER.search(data):
            yield Finding(
                "secrets.private-key",
                f"{path} holds a private key",
                view.evidence(path, found_by="header"),
            )


def _cloud_credentials(view: RootView) -> Iterator[Finding]:
    for path in _user_data(view):
        kind = _credential_kind(view, path)
        if kind:
            yield Finding("secrets.cloud-credentials", f"{path}: {kind}", view.evidence(path))


def _credential_kind(view: RootView, path: str) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if path.endswith("/.aws/credentials"):
        return "AWS credentials"
    if path.endswith("/.git-credentials"):
        return "git credentials"
    if path.endswith("/.config/gcloud/application_default_credentials.json"):
        return "Google Cloud credentials"
    if name == "clouds.yaml" or path.endswith("/openstack/secure.yaml"):
        text = view.text(path) or ""
        return "OpenStack secrets" if _SECRET_KEYS.search(text) else None
    if path.endswith("/.docker/config.json"):
        text = view.text(path) or ""
        return (
            "registry credentials"
            if re.search(r'"(auth|identitytoken)"\s*:\s*"[^"]', text)
            else None
        )
    if name in (".netrc", "_netrc"):
        text = view.text(path) or ""
        return "passwords in .netrc" if re.search(r"\bpassword\s+\S", text) else None
    if path.endswith("/.kube/config"):
        text = view.text(path) or ""
        return "Kubernetes credentials" if re.search(r"(token|client-key-data)\s*:", text) else None
    return None


def _table(text: str | None) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in (text or "").splitlines():
        if line and not line.startswith("#") and ":" in line:
            name, *fields = line.split(":")
            rows.setdefault(name, fields)
    return rows


def _login_defs(text: str | None, key: str, default: int) -> int:
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == key:
            return _int(parts[1]) or default
    return default


def _int(text: str) -> int | None:
    try:
        return int(text)
    except ValueError:
        return None
