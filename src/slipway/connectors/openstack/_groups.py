"""Neutron security groups brought to exactly the declared ingress rules.

A group Slipway creates says so in its description (:data:`MARKER`); a group
of the same name without it belongs to someone else and is never changed.
Egress rules are left as Neutron makes them (everything allowed).

Neutron allows two groups of one name, so two ensures racing to create the
same group can both succeed: the one created first (then by id) is kept, the
other deleted by whoever made it. A rule another ensure added or removed
between our read and our write is taken as done.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from slipway.connectors.openstack._errors import translated
from slipway.domain.machines import Rule, SecurityGroup
from slipway.errors import CloudError, InputError

if TYPE_CHECKING:
    from openstack.connection import Connection
    from openstack.network.v2.security_group import SecurityGroup as NeutronGroup

__all__ = ["MARKER", "SecurityGroups", "to_neutron_rule", "to_rule"]

MARKER = "slipway-managed"
"""In the description of every security group Slipway created, and only those."""
_PROTOCOL_NUMBERS = {"1": "icmp", "6": "tcp", "17": "udp"}


def to_rule(rule: Mapping[str, Any]) -> Rule:
    """A Neutron ingress rule in our words. A rule whose source is another group
    gets the source ``group:<id>``: no declared rule matches it."""
    raw = str(rule.get("protocol") or "all")
    protocol = _PROTOCOL_NUMBERS.get(raw, raw)
    ports = ""
    low, high = rule.get("port_range_min"), rule.get("port_range_max")
    if protocol in ("tcp", "udp") and low is not None:
        ports = str(low) if low == high or high is None else f"{low}-{high}"
    if rule.get("remote_group_id"):
        source = f"group:{rule['remote_group_id']}"
    else:
        any_source = "::/0" if rule.get("ethertype") == "IPv6" else "0.0.0.0/0"
        source = str(rule.get("remote_ip_prefix") or any_source)
    return Rule(protocol, ports, source)


def _normal(rule: Rule) -> Rule:
    """The form Neutron stores: no port 0, and every port of a protocol is no range."""
    if rule.protocol not in ("tcp", "udp") or not rule.ports:
        return Rule(rule.protocol, "", rule.source)
    low, high = rule.port_range
    low = max(low, 1)
    if (low, high) == (1, 65535):
        return Rule(rule.protocol, "", rule.source)
    return Rule(rule.protocol, str(low) if low == high else f"{low}-{high}", rule.source)


def to_neutron_rule(rule: Rule) -> dict[str, Any]:
    """The attributes of a Neutron ingress rule for ``rule``."""
    rule = _normal(rule)
    attrs: dict[str, Any] = {
        "direction": "ingress",
        "ethertype": "IPv6" if ":" in rule.source else "IPv4",
        "remote_ip_prefix": rule.source,
    }
    if rule.protocol != "all":
        attrs["protocol"] = rule.protocol
    if rule.ports:
        attrs["port_range_min"], attrs["port_range_max"] = rule.port_range
    return attrs


def _ingress(group: NeutronGroup) -> list[tuple[str, Rule]]:
    """(rule id, rule) for every ingress rule of the group."""
    return [
        (str(r["id"]), to_rule(r))
        for r in group.security_group_rules or []
        if r.get("direction") == "ingress"
    ]


def _is_ours(group: NeutronGroup) -> bool:
    return MARKER in str(group.description or "")


class SecurityGroups:
    """The security groups of one project."""

    def __init__(self, cloud: str, connection: Connection) -> None:
        self.cloud = cloud
        self.connection = connection
        self._ids: dict[str, str] = {}  # groups ensured by this connector
        self._lock = threading.Lock()

    def _named(self, name: str) -> list[NeutronGroup]:
        """The project's groups called ``name``, the first created first."""
        project = self.connection.current_project_id
        groups = list(self.connection.network.security_groups(name=name, project_id=project))
        return sorted(groups, key=lambda g: (str(g.created_at or ""), str(g.id)))

    def check(self, name: str) -> SecurityGroup | None:
        with translated(self.cloud, f"security group {name}"):
            groups = self._named(name)
        if not groups:
            return None
        group = next((g for g in groups if _is_ours(g)), groups[0])
        return SecurityGroup(name, tuple(r for _, r in _ingress(group)), str(group.id))

    def id_of(self, name: str) -> str:
        """The id of the group called ``name``, for a server to join it."""
        with self._lock:
            known = self._ids.get(name)
        if known is not None:
            return known
        with translated(self.cloud, f"security group {name}"):
            groups = self._named(name)
        if not groups:
            raise CloudError(f"security group {name} does not exist", cloud=self.cloud)
        return str(next((g for g in groups if _is_ours(g)), groups[0]).id)

    def ensure(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        """Create the group if missing, add missing rules, delete extra ones."""
        for rule in rules:
            problems = rule.problems()
            if problems:
                raise InputError(f"security group {name}: {'; '.join(problems)}")
        wanted = list(dict.fromkeys(rules))
        with translated(self.cloud, f"security group {name}"):
            group = self._own_group(name)
            self._bring_to(group, wanted)
        with self._lock:
            self._ids[name] = str(group.id)
        return SecurityGroup(name, tuple(wanted), str(group.id))

    def _own_group(self, name: str) -> NeutronGroup:
        groups = self._named(name)
        foreign = [g for g in groups if not _is_ours(g)]
        if foreign:
            raise CloudError(
                f"security group {name} was not made by Slipway, which leaves it as it is",
                cloud=self.cloud,
                hint="rename or delete that group, or declare yours under another name",
            )
        if groups:
            return groups[0]
        network = self.connection.network
        made = network.create_security_group(name=name, description=f"{MARKER}: {name}")
        # Neutron's default ingress rules (from the group itself) would stand
        # beside the declared ones: they are extra and go in _bring_to.
        first = self._named(name)[0]
        if first.id != made.id:  # a concurrent ensure made it first
            network.delete_security_group(made, ignore_missing=True)
            return first
        return network.get_security_group(made.id)

    def _bring_to(self, group: NeutronGroup, wanted: list[Rule]) -> None:
        import openstack.exceptions as ox

        network = self.connection.network
        current = _ingress(group)
        normal_current = {_normal(rule) for _, rule in current}
        normal_wanted = {_normal(rule) for rule in wanted}
        for rule in wanted:
            if _normal(rule) in normal_current:
                continue
            normal_current.add(_normal(rule))
            # ConflictException: the same rule, added by a concurrent ensure
            with contextlib.suppress(ox.ConflictException):
                network.create_security_group_rule(
                    security_group_id=group.id, **to_neutron_rule(rule)
                )
        for rule_id, rule in current:
            if _normal(rule) not in normal_wanted:
                network.delete_security_group_rule(rule_id, ignore_missing=True)
