"""Run targets for tests: one with every field set, and the JSON document a
deploy stored for the same run before the target had a type of its own."""

from __future__ import annotations

import dataclasses
from typing import Any

from slipway.domain.machines import Rule
from slipway.domain.modules import Kind
from slipway.domain.run_target import Recipes, RunGroup, RunTarget, ServicePort
from slipway.domain.security import GroupAction

SEALED = "gAAAAABsealed-run-key"
"""What the vault made of the run's private key (tests never open it)."""


def a_run_target(**changes: Any) -> RunTarget:
    """A component's target with every field set; ``changes`` replace fields."""
    target = RunTarget(
        native_id="debian-12-minimal",
        flavor="large",
        cpu=2,
        ram=4.0,
        login_user="debian",
        kind=Kind.COMPONENT,
        driver="local",
        run_key="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRunKey slipway-run-r1",
        sealed_key=SEALED,
        disk=4.0,
        platform="debian",
        security_groups=(
            RunGroup(
                "slipway:alice:web",
                GroupAction.ENSURE,
                (Rule("tcp", "80", "0.0.0.0/0"), Rule("tcp", "22", "::/0")),
            ),
            RunGroup("default", GroupAction.MUST_EXIST),
        ),
        ports=(ServicePort(80, "tcp", "http"), ServicePort(5353, "udp")),
        recipes=Recipes(("nginx",), "", "systemctl enable --now nginx", "curl -f localhost"),
        user_keys=("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUserKey alice@laptop",),
    )
    return dataclasses.replace(target, **changes)


def stored_by_earlier_deploys() -> dict[str, Any]:
    """``a_run_target()`` as deploys wrote it into ``runs.target`` before it was
    typed: recipes only with the keys the definition had, a port without a name
    without the key."""
    return {
        "native_id": "debian-12-minimal",
        "flavor": "large",
        "cpu": 2,
        "ram": 4,
        "disk": 4.0,
        "login_user": "debian",
        "platform": "debian",
        "security_groups": [
            {
                "name": "slipway:alice:web",
                "action": "ensure",
                "rules": [
                    {"protocol": "tcp", "ports": "80", "source": "0.0.0.0/0"},
                    {"protocol": "tcp", "ports": "22", "source": "::/0"},
                ],
            },
            {"name": "default", "action": "must-exist", "rules": []},
        ],
        "ports": [
            {"port": 80, "protocol": "tcp", "name": "http"},
            {"port": 5353, "protocol": "udp"},
        ],
        "recipes": {
            "packages": ["nginx"],
            "post_install": "systemctl enable --now nginx",
            "deployment": "curl -f localhost",
        },
        "kind": "component",
        "user_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUserKey alice@laptop"],
        "run_key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRunKey slipway-run-r1",
        "sealed_key": SEALED,
        "driver": "local",
    }
