"""What ``slipway image check`` can report: the rules, the findings, the report.

Every guideline of DESIGN.md §8 is a :class:`Rule` in :data:`RULES`, the one
registry that the checks, the sanitiser and docs/image-check.md all read.

Rule ids are ``area.what`` in lower case (``accounts.password-hash``): the area
groups rules in the docs, the whole id is stable and is what scripts match on.
An id is never reused for another meaning; a retired rule keeps its id.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "RULES",
    "CheckReport",
    "Finding",
    "Rule",
    "Severity",
    "rule",
]


class Severity(StrEnum):
    """How bad a finding is: an ``error`` fails the check (exit status 1)."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


@dataclass(frozen=True)
class Rule:
    """One guideline: a stable id, how bad breaking it is, what it means, the fix.

    ``removable`` rules are those ``slipway image sanitise`` fixes by itself.
    """

    id: str
    severity: Severity
    what: str
    fix: str
    removable: bool = False

    @property
    def area(self) -> str:
        return self.id.split(".", 1)[0]


_E, _W, _I = Severity.ERROR, Severity.WARNING, Severity.INFO

_RULE_LIST = (
    # The file itself.
    Rule(
        "image.unreadable",
        _E,
        "The file is not a disk image Slipway can read "
        "(empty, random bytes, truncated or an unknown format).",
        "Check the download (size, checksum) and the format; rebuild or re-export the image.",
    ),
    Rule(
        "image.corrupt",
        _E,
        "qemu-img check reports errors or the image is marked corrupt.",
        "Rebuild the image, or repair a copy with `qemu-img check -r all`.",
    ),
    Rule(
        "image.encrypted",
        _E,
        "The disk or a partition is encrypted (LUKS); "
        "nothing inside can be checked and clouds cannot resize it.",
        "Ship an unencrypted image; encrypt volumes at deployment time.",
    ),
    Rule(
        "image.filesystem-unsupported",
        _E,
        "The root filesystem is not ext2/3/4, so the guidelines cannot be verified offline.",
        "Use ext4 for the root filesystem, or check this image by booting it.",
    ),
    Rule(
        "image.no-root-filesystem",
        _E,
        "No partition holds a Linux root filesystem (/etc).",
        "Make sure the image contains an installed system on one ext4 partition.",
    ),
    Rule(
        "image.filesystem-errors",
        _E,
        "e2fsck -fn reports filesystem errors.",
        "Run e2fsck on a copy of the image and rebuild it from a clean state.",
    ),
    # Format, compression and space.
    Rule(
        "format.raw",
        _W,
        "The image is raw: every byte of the virtual disk is uploaded.",
        "Convert it: `slipway image convert --to qcow2` (compressed qcow2) or OVA.",
    ),
    Rule(
        "format.not-compressed",
        _W,
        "The image format supports compression but no cluster is compressed.",
        "`slipway image compact` (or `qemu-img convert -O qcow2 -c`).",
    ),
    Rule(
        "space.virtual-size-large",
        _W,
        "The virtual disk is larger than 20 GiB; small images deploy everywhere and grow at boot.",
        "Rebuild with a smaller disk; cloud-init's growpart grows / on larger flavors.",
    ),
    Rule(
        "space.allocated-zeros",
        _W,
        "Space is allocated in the image file that holds only zeros.",
        "`slipway image compact` (sparsify) removes it.",
    ),
    Rule(
        "space.free-not-zeroed",
        _W,
        "Free filesystem blocks hold old data, so the image "
        "compresses badly (and may leak deleted files).",
        "`slipway image compact` zero-fills free space before compressing.",
    ),
    Rule(
        "files.large-unowned",
        _W,
        "A large file (over 64 MiB) that no installed package "
        "owns: data does not belong inside an image.",
        "Remove it from the image and fetch data at deployment time.",
    ),
    # Disk layout.
    Rule(
        "layout.multiple-partitions",
        _E,
        "More than one data partition: providers can only grow the last one.",
        "Rebuild with a single root partition.",
    ),
    Rule(
        "layout.separate-boot",
        _E,
        "/boot is a separate partition.",
        "Keep /boot on the root filesystem.",
    ),
    Rule(
        "layout.swap-partition",
        _E,
        "The disk has a swap partition.",
        "Remove it; clouds give swap through flavors or cloud-init `swap:`.",
    ),
    Rule(
        "layout.swap-file",
        _E,
        "The root filesystem holds a swap file.",
        "Delete the swap file (and its fstab entry); use cloud-init `swap:` if needed.",
    ),
    Rule(
        "layout.swap-fstab",
        _E,
        "/etc/fstab activates swap.",
        "Delete the swap line from /etc/fstab.",
    ),
    Rule(
        "layout.lvm",
        _E,
        "The disk uses LVM: providers cannot resize it.",
        "Rebuild with a plain partition holding ext4.",
    ),
    # cloud-init.
    Rule(
        "cloudinit.missing",
        _E,
        "cloud-init is not installed: the image cannot receive "
        "keys, users or scripts from the cloud.",
        "Install the cloud-init package.",
    ),
    Rule(
        "cloudinit.disabled",
        _E,
        "cloud-init is installed but will not run at boot.",
        "Remove /etc/cloud/cloud-init.disabled and enable cloud-init's units "
        "(`systemctl enable cloud-init-local cloud-init cloud-config cloud-final`).",
    ),
    Rule(
        "cloudinit.datasources",
        _I,
        "The datasources cloud-init will try, in order.",
        "Nothing to do; list NoCloud and your clouds' sources in `datasource_list`.",
    ),
    Rule(
        "cloudinit.datasources-narrow",
        _W,
        "cloud-init's datasource_list names none of the "
        "usual cloud sources (OpenStack, Ec2, ConfigDrive, NoCloud).",
        "Set `datasource_list: [NoCloud, ConfigDrive, OpenStack, Ec2, None]`.",
    ),
    Rule(
        "cloudinit.state",
        _W,
        "cloud-init state from an earlier boot (/var/lib/cloud): "
        "the image would not run first-boot setup.",
        "`slipway image sanitise` (or `cloud-init clean`).",
        removable=True,
    ),
    # Accounts and credentials.
    Rule(
        "accounts.password-hash",
        _E,
        "An account has a password set in /etc/shadow.",
        "Lock it (`passwd -l`, `*` or `!` in /etc/shadow); log in with SSH keys.",
    ),
    Rule(
        "accounts.empty-password",
        _E,
        "An account has an empty password: anyone can log in.",
        "Lock it (`passwd -l`).",
    ),
    Rule(
        "accounts.login-account",
        _E,
        "An account besides the system ones has a login shell (a default account).",
        "Delete it; cloud-init creates the login user at first boot.",
    ),
    Rule(
        "ssh.authorized-keys",
        _E,
        "An authorized_keys file grants SSH access to whoever holds the key.",
        "`slipway image sanitise`, or delete the file.",
        removable=True,
    ),
    Rule(
        "ssh.host-keys",
        _E,
        "SSH host keys are present: every VM from this image would share them.",
        "`slipway image sanitise` (they are regenerated at first boot).",
        removable=True,
    ),
    Rule(
        "secrets.private-key",
        _E,
        "A private key (by file name or PEM/OpenSSH header).",
        "Delete it and revoke it: anyone with the image has it.",
    ),
    Rule(
        "secrets.cloud-credentials",
        _E,
        "A cloud credential file (.aws/credentials, "
        "clouds.yaml with secrets, .docker/config.json, .netrc).",
        "Delete it and rotate the credential.",
    ),
    Rule(
        "secrets.shell-history",
        _E,
        "A shell history (it often holds passwords and tokens).",
        "`slipway image sanitise`, or delete the file.",
        removable=True,
    ),
    Rule(
        "identity.machine-id",
        _E,
        "/etc/machine-id is not empty: every VM from this image would share it.",
        "`slipway image sanitise` (empties it; systemd fills it at boot).",
        removable=True,
    ),
    Rule(
        "logs.present",
        _W,
        "Log files from the build or an earlier boot.",
        "`slipway image sanitise` empties them.",
        removable=True,
    ),
    # Services and network.
    Rule(
        "sshd.root-login",
        _E,
        "sshd allows root to log in (`PermitRootLogin yes`).",
        "Set `PermitRootLogin prohibit-password` (or no) and let cloud-init's "
        "`disable_root` apply.",
    ),
    Rule(
        "sshd.password-login",
        _E,
        "sshd accepts passwords (`PasswordAuthentication yes`, "
        "and cloud-init's `ssh_pwauth` does not turn it off).",
        "Set `PasswordAuthentication no`, or `ssh_pwauth: false` in cloud-init's config.",
    ),
    Rule(
        "firewall.none",
        _W,
        "No firewall rules are configured (IPv4 and IPv6).",
        "Ship nftables (or iptables-persistent) rules that allow SSH and drop the rest.",
    ),
    Rule(
        "firewall.open",
        _W,
        "The firewall rules accept everything.",
        "Default to drop and allow only the ports the image serves, for IPv4 and IPv6.",
    ),
    Rule(
        "services.network",
        _W,
        "A network service besides sshd is enabled.",
        "Disable it (`systemctl disable`), or enable it at deployment time.",
    ),
)

RULES: Mapping[str, Rule] = {r.id: r for r in _RULE_LIST}
if len(RULES) != len(_RULE_LIST):  # pragma: no cover - guards the registry at import
    raise RuntimeError("duplicate rule id in slipway.imagekit.findings")


def rule(rule_id: str) -> Rule:
    """The rule with this id; a ``KeyError`` names a typo in the code, not the user's."""
    return RULES[rule_id]


@dataclass(frozen=True)
class Finding:
    """One broken guideline, with the evidence (path, partition, sizes in bytes)."""

    rule_id: str
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rule(self.rule_id)  # an unknown id fails where it is made

    @property
    def rule(self) -> Rule:
        return RULES[self.rule_id]

    @property
    def severity(self) -> Severity:
        return self.rule.severity

    def to_dict(self) -> dict[str, Any]:
        r = self.rule
        return {
            "id": r.id,
            "severity": str(r.severity),
            "detail": self.detail,
            "evidence": dict(self.evidence),
            "fix": r.fix,
            "removable": r.removable,
        }


_ORDER = {Severity.ERROR: 0, Severity.WARNING: 1, Severity.INFO: 2}


@dataclass(frozen=True)
class CheckReport:
    """The result of checking one image: what it is and what is wrong with it.

    Sizes are in bytes; ``seconds`` is the wall time the check took.
    """

    path: str
    format: str | None
    virtual_size: int | None
    actual_size: int | None
    partitions: tuple[Mapping[str, Any], ...]
    findings: tuple[Finding, ...]
    seconds: float = 0.0

    @property
    def has_errors(self) -> bool:
        return any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(f.rule_id for f in self.findings)

    def by_id(self, rule_id: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.rule_id == rule_id)

    def sorted_findings(self) -> tuple[Finding, ...]:
        return tuple(sorted(self.findings, key=lambda f: (_ORDER[f.severity], f.rule_id)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "virtual_size": self.virtual_size,
            "actual_size": self.actual_size,
            "partitions": [dict(p) for p in self.partitions],
            "has_errors": self.has_errors,
            "seconds": round(self.seconds, 3),
            "findings": [f.to_dict() for f in self.sorted_findings()],
        }
