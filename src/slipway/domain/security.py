"""Security groups: what a definition's groups mean on each cloud (DESIGN.md §5).

- ``slipway_managed`` is the default; it opens every port from anywhere, and
  every plan that uses it carries a warning saying so.
- A group declared in Slipway is created or updated with identical rules on
  every cloud a definition deploys to.
- A group referenced but not declared must already exist on the cloud; until a
  connector has looked, it is reported as unverified.
- A cloud without security groups is reported: networking is the user's job.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from slipway.domain.machines import Rule

__all__ = [
    "MANAGED_GROUP",
    "MANAGED_RULES",
    "GroupAction",
    "GroupDefinition",
    "GroupPlan",
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


@dataclass(frozen=True)
class GroupDefinition:
    name: str
    rules: tuple[Rule, ...]
    description: str = ""


class GroupAction(StrEnum):
    ENSURE = "ensure"  # create or update with our rules
    MUST_EXIST = "must-exist"  # not declared: must already be on the cloud
    UNSUPPORTED = "unsupported"  # the cloud has no security groups


@dataclass(frozen=True)
class GroupPlan:
    cloud: str
    group: str
    action: GroupAction
    rules: tuple[Rule, ...] = ()
    warning: str = ""


def plan_security_groups(
    groups: Sequence[str] | None,
    clouds: Mapping[str, bool],
    declared: Mapping[str, GroupDefinition],
) -> list[GroupPlan]:
    """The plan for each cloud in ``clouds`` (name → supports security groups).

    ``groups`` is the definition's effective list; ``None`` or empty means the
    default group.
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
                    GroupPlan(cloud, name, GroupAction.ENSURE, MANAGED_RULES, MANAGED_WARNING)
                )
            elif name in declared:
                plans.append(GroupPlan(cloud, name, GroupAction.ENSURE, declared[name].rules))
            else:
                plans.append(
                    GroupPlan(
                        cloud,
                        name,
                        GroupAction.MUST_EXIST,
                        warning=f"security group {name!r} is not declared in Slipway: it must "
                        f"already exist on {cloud}; this is checked before a deploy starts",
                    )
                )
    return plans
