"""Security groups: what a definition's groups mean on each cloud (DESIGN.md §5).

- ``slipway_managed`` is the default; it opens every port from anywhere, and
  every plan that uses it carries a warning saying so.
- A group declared in Slipway is created or updated with identical rules on
  every cloud a definition deploys to.
- A group referenced but not declared must already exist on the cloud; until a
  connector has looked, it is reported as unverified.
- A cloud without security groups is reported: networking is the user's job.

Declared groups belong to whoever owns their definition: on a cloud, alice's
``db`` is the group ``slipway:alice:db`` and bob's is ``slipway:bob:db``, two
groups, so nobody's deploy changes the firewall of anybody else's machines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from slipway.domain.machines import Rule

__all__ = [
    "MANAGED_GROUP",
    "MANAGED_PREFIX",
    "MANAGED_RULES",
    "GroupAction",
    "GroupDefinition",
    "GroupPlan",
    "managed_name",
    "plan_security_groups",
]

MANAGED_GROUP = "slipway_managed"
MANAGED_RULES = (
    Rule("tcp", "1-65535", "0.0.0.0/0"),
    Rule("udp", "1-65535", "0.0.0.0/0"),
    Rule("icmp", "", "0.0.0.0/0"),
    Rule("tcp", "1-65535", "::/0"),
    Rule("udp", "1-65535", "::/0"),
)
MANAGED_WARNING = (
    "security group slipway_managed opens every port to the whole internet: convenient "
    "and insecure; declare a kind: security-group with only the ports you need"
)


MANAGED_PREFIX = "slipway:"
"""How the cloud names of declared groups begin; no other group is called so."""


def managed_name(owner: str, name: str) -> str:
    """The cloud's name of the group ``name`` declared by ``owner``. Neither a
    user name nor a declared group name holds a ``:``, so no two owners' groups
    share a name."""
    return f"{MANAGED_PREFIX}{owner}:{name}"


@dataclass(frozen=True)
class GroupDefinition:
    """A declared group: ``name`` as definitions reference it, ``owner`` the
    owner of the module declaring it, ``module`` that module's label."""

    name: str
    rules: tuple[Rule, ...]
    description: str = ""
    owner: str = ""
    module: str = ""

    @property
    def cloud_name(self) -> str:
        return managed_name(self.owner, self.name) if self.owner else self.name


class GroupAction(StrEnum):
    ENSURE = "ensure"  # create or update with our rules
    MUST_EXIST = "must-exist"  # not declared: must already be on the cloud
    UNSUPPORTED = "unsupported"  # the cloud has no security groups


@dataclass(frozen=True)
class GroupPlan:
    """What one group of a definition means on one cloud: ``group`` as the
    definition names it, ``on_cloud`` the group's name there, ``declared_by``
    the module declaring it (empty for groups Slipway does not declare)."""

    cloud: str
    group: str
    action: GroupAction
    rules: tuple[Rule, ...] = ()
    warning: str = ""
    on_cloud: str = ""
    declared_by: str = ""


def plan_security_groups(
    groups: Sequence[str] | None,
    clouds: Mapping[str, bool],
    declared: Mapping[str, GroupDefinition],
) -> list[GroupPlan]:
    """The plan for each cloud in ``clouds`` (name → supports security groups).

    ``groups`` is the definition's effective list; ``None`` or empty means the
    default group. ``declared`` maps each entry of ``groups`` that is declared
    in Slipway, in the definition's own scope, to its definition.
    """
    names = list(groups) if groups else [MANAGED_GROUP]
    plans: list[GroupPlan] = []
    for cloud, supported in clouds.items():
        if not supported:
            plans.append(
                GroupPlan(
                    cloud,
                    ", ".join(names),
                    GroupAction.UNSUPPORTED,
                    warning=f"{cloud} has no security groups: open the ports you need by hand "
                    "(the cloud's own firewall or network settings)",
                )
            )
            continue
        for name in names:
            if name == MANAGED_GROUP:
                plans.append(
                    GroupPlan(
                        cloud,
                        name,
                        GroupAction.ENSURE,
                        MANAGED_RULES,
                        MANAGED_WARNING,
                        on_cloud=MANAGED_GROUP,
                    )
                )
            elif name in declared:
                found = declared[name]
                plans.append(
                    GroupPlan(
                        cloud,
                        name,
                        GroupAction.ENSURE,
                        found.rules,
                        on_cloud=found.cloud_name,
                        declared_by=found.module,
                    )
                )
            else:
                plans.append(
                    GroupPlan(
                        cloud,
                        name,
                        GroupAction.MUST_EXIST,
                        warning=f"security group {name!r} is not declared in Slipway: it must "
                        f"already exist on {cloud}; this is checked before a deploy starts",
                        on_cloud=name,
                    )
                )
    return plans
