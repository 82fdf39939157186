"""Security-group rules: ours (:class:`Rule`) to Exoscale's and back.

Exoscale's ports run from 1, so a TCP or UDP rule without ports, or from port
0, is the range from 1; rules are compared in that normal form, so a group is
never changed back and forth between two spellings of the same rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from slipway.domain.machines import Rule
from slipway.errors import InputError

__all__ = ["MANAGED_MARK", "is_managed", "normal", "to_body", "to_rules", "wanted_rules"]

MANAGED_MARK = "slipway-managed"
"""Opens the description of every group Slipway created, and of no other:
Exoscale's security groups carry no labels."""


def is_managed(group: Mapping[str, Any]) -> bool:
    return str(group.get("description", "")).startswith(MANAGED_MARK)


def normal(rule: Rule) -> Rule:
    """The rule as Exoscale will hold it."""
    if rule.protocol not in ("tcp", "udp"):
        return Rule(rule.protocol, "", rule.source)
    low, high = rule.port_range
    low = max(low, 1)
    return Rule(rule.protocol, str(low) if low == high else f"{low}-{high}", rule.source)


def wanted_rules(name: str, rules: Iterable[Rule]) -> list[Rule]:
    """The declared rules, checked, in normal form, without repeats."""
    wanted: list[Rule] = []
    for rule in rules:
        problems = rule.problems()
        if problems:
            raise InputError(f"security group {name}: {'; '.join(problems)}")
        wanted.append(normal(rule))
    return list(dict.fromkeys(wanted))


def to_body(rule: Rule) -> dict[str, Any]:
    """The body of ``add-rule-to-security-group`` for an ingress ``rule``."""
    body: dict[str, Any] = {"flow_direction": "ingress", "network": rule.source}
    if rule.protocol in ("tcp", "udp"):
        low, high = rule.port_range
        body.update(protocol=rule.protocol, start_port=low, end_port=high)
    elif rule.protocol == "icmp":
        body["protocol"] = "icmpv6" if ":" in rule.source else "icmp"
        body["icmp"] = {"type": -1, "code": -1}
    else:
        body["protocol"] = "all"
    return body


def to_rules(items: Iterable[Mapping[str, Any]]) -> dict[str, Rule]:
    """A group's ingress rules by rule id. A rule whose source is another
    group rather than a network has an empty source: it matches no declared
    rule, so an ensure removes it."""
    rules: dict[str, Rule] = {}
    for item in items:
        if item.get("flow-direction") != "ingress":
            continue
        protocol = str(item.get("protocol", ""))
        protocol = "icmp" if protocol == "icmpv6" else protocol
        ports = ""
        if protocol in ("tcp", "udp"):
            low, high = item.get("start-port", 1), item.get("end-port", 65535)
            ports = str(low) if low == high else f"{low}-{high}"
        source = str(item.get("network") or "")
        rules[str(item["id"])] = Rule(protocol, ports, source)
    return rules
