"""cloud-init user data for a run (DESIGN.md §6): the login user with the
user's SSH public keys plus the run's own key, the recipes, and a final marker
that the readiness check looks for.

The recipes run in SlipStream's order from one script started by ``runcmd``:
pre-install, packages (through the platform's package manager), post-install,
deployment. cloud-init's own ``packages:`` module would install before any
``runcmd`` and so before the pre-install script, which is why packages are
installed by the script instead (``packages:`` is used only for platform
``other``, where Slipway does not know the package manager).

When the script ends it writes ``MARKER_PATH``: ``<exit code> <step>`` — ``0
done`` when every recipe exited 0, else the failing step's exit code and
name. Its output goes to ``RECIPES_LOG``. Nothing here logs the document: it
can hold recipes with secrets in them.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from slipway.domain.run_target import Recipes
from slipway.errors import InputError

__all__ = [
    "MARKER_PATH",
    "RECIPES_LOG",
    "Marker",
    "Recipes",
    "UserData",
    "build_user_data",
    "parse_marker",
    "readiness_command",
]

MARKER_PATH = "/var/lib/slipway/recipes.done"
RECIPES_LOG = "/var/log/slipway-recipes.log"
_RECIPE_DIR = "/var/lib/slipway/recipes"
_RUNNER = "/var/lib/slipway/run-recipes.sh"

# platform (DESIGN.md §3) -> the shell line that installs "$@" non-interactively
_INSTALLERS = {
    "debian": "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q",
    "ubuntu": "export DEBIAN_FRONTEND=noninteractive; apt-get update -q && apt-get install -y -q",
    "redhat": "if command -v dnf >/dev/null; then dnf -y install; else yum -y install; fi",
    "suse": "zypper --non-interactive install",
}
_PLATFORMS = (*_INSTALLERS, "other", "windows")
_STEPS = ("pre_install", "post_install", "deployment")


@dataclass(frozen=True)
class UserData:
    """The rendered ``#cloud-config`` document. Its ``repr`` leaves the text out
    so that logging the object never logs recipes."""

    text: str = field(repr=False)

    def __str__(self) -> str:
        return f"<user data, {len(self.text)} bytes>"


@dataclass(frozen=True)
class Marker:
    """What the marker file says: the exit code and the step it comes from."""

    exit_code: int
    step: str

    @property
    def succeeded(self) -> bool:
        return self.exit_code == 0


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes multi-line strings as literal blocks, so scripts stay readable
    (emitted by libyaml when PyYAML was built with it: deploys are hot)."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def _script(recipe: str) -> str:
    """A recipe as an executable file: its own ``#!`` line, else ``sh -e``."""
    body = recipe.rstrip("\n") + "\n"
    return body if body.startswith("#!") else "#!/bin/sh -e\n" + body


def _runner_script(
    platform: str, recipes: Recipes, open_ports: Sequence[tuple[int, str]] = ()
) -> str:
    lines = [
        "#!/bin/sh",
        "# Written by Slipway: runs the recipes in order, then leaves the marker.",
        f"exec >>{RECIPES_LOG} 2>&1",
        f"mkdir -p {shlex.quote(MARKER_PATH.rsplit('/', 1)[0])}",
        "finish() {",
        f'  echo "$1 $2" > {MARKER_PATH}.tmp && mv {MARKER_PATH}.tmp {MARKER_PATH}',
        '  echo "slipway: recipes finished: exit $1 at $2"',
        '  exit "$1"',
        "}",
        "step() {",
        '  echo "slipway: step $1"',
        f'  "{_RECIPE_DIR}/$1.sh" || finish "$?" "$1"',
        "}",
    ]
    for port, protocol in open_ports:
        # A declared service port must get through the guest's own firewall
        # too: the cloud's security group is only half of the way in.
        lines.append(
            f"if command -v nft >/dev/null && nft list chain inet filter input >/dev/null 2>&1;"
            f" then nft add rule inet filter input {protocol} dport {int(port)} accept"
            f' && echo "slipway: opened {protocol}/{int(port)} in nftables"; fi'
        )
    if recipes.pre_install:
        lines.append("step pre_install")
    if recipes.packages and platform in _INSTALLERS:
        packages = " ".join(shlex.quote(p) for p in recipes.packages)
        lines += [
            'echo "slipway: step packages"',
            f'( {_INSTALLERS[platform]} {packages} ) || finish "$?" packages',
        ]
    for step in ("post_install", "deployment"):
        if getattr(recipes, step):
            lines.append(f"step {step}")
    lines.append("finish 0 done")
    return "\n".join(lines) + "\n"


def build_user_data(
    *,
    login_user: str,
    public_keys: Sequence[str],
    platform: str = "debian",
    recipes: Recipes = Recipes(),
    hostname: str | None = None,
    open_ports: Sequence[tuple[int, str]] = (),
) -> UserData:
    """The ``#cloud-config`` document for one machine.

    ``public_keys`` are OpenSSH public key lines: the user's own and the run's.
    ``open_ports`` (port, ``tcp``/``udp``) are opened in the guest's nftables
    input chain, where it has one, before the recipes run.
    Raises :class:`InputError` for a missing key, an unknown platform, or a
    Windows image (cloud-init user data does not apply).
    """
    if platform not in _PLATFORMS:
        raise InputError(f"unknown platform {platform!r}", hint=f"one of: {', '.join(_PLATFORMS)}")
    if platform == "windows":
        raise InputError("Windows images are not contextualised with cloud-init user data")
    keys = [k.strip() for k in public_keys if k.strip()]
    if not keys:
        raise InputError("at least one SSH public key is needed to log in to the machine")
    for key in keys:
        if "PRIVATE KEY" in key or not key.startswith(("ssh-", "ecdsa-", "sk-")):
            raise InputError("an SSH public key line must start with its type, like ssh-ed25519")
    for port, protocol in open_ports:
        if protocol not in ("tcp", "udp") or not 1 <= int(port) <= 65535:
            raise InputError(f"cannot open port {port}/{protocol}")
    if not login_user or not login_user.replace("-", "").replace("_", "").isalnum():
        raise InputError(f"login user {login_user!r} is not a valid user name")

    doc: dict[str, Any] = {}
    if hostname:
        doc["hostname"] = hostname
    if login_user == "root":
        doc["disable_root"] = False
        doc["ssh_authorized_keys"] = keys
    else:
        doc["disable_root"] = True
        doc["users"] = [
            {
                "name": login_user,
                "shell": "/bin/sh" if platform == "other" else "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": keys,
            }
        ]
    doc["ssh_pwauth"] = False
    doc["ssh_deletekeys"] = True
    # Host-key generation dominates first boot under TCG; two types suffice.
    doc["ssh_genkeytypes"] = ["ed25519", "ecdsa"]
    if recipes.packages and platform == "other":
        doc["packages"] = list(recipes.packages)

    files = [
        {
            "path": f"{_RECIPE_DIR}/{step}.sh",
            "permissions": "0700",
            "owner": "root:root",
            "content": _script(getattr(recipes, step)),
        }
        for step in _STEPS
        if getattr(recipes, step)
    ]
    files.append(
        {
            "path": _RUNNER,
            "permissions": "0700",
            "owner": "root:root",
            "content": _runner_script(platform, recipes, open_ports),
        }
    )
    doc["write_files"] = files
    doc["runcmd"] = [[_RUNNER]]
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000)
    return UserData("#cloud-config\n" + body)


def readiness_command() -> str:
    """A shell command, run over SSH, that prints ``<cloud-init status> <marker>``
    once cloud-init has finished, e.g. ``done 0 done``; prints ``running`` while
    it has not. Needs no root."""
    return (
        "s=$(cloud-init status 2>/dev/null | sed -n 's/^status: //p'); "
        f'case "$s" in done|error|degraded*) echo "$s $(cat {MARKER_PATH} 2>/dev/null)";; '
        '*) echo "${s:-running}";; esac'
    )


def parse_marker(text: str) -> Marker | None:
    """The marker file's content as a :class:`Marker`; ``None`` when absent or torn."""
    parts = text.split()
    if len(parts) != 2 or not parts[0].lstrip("-").isdigit():
        return None
    return Marker(int(parts[0]), parts[1])
