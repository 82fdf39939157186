"""Resolve an image or component: its effective definition, where each value
came from, and what it becomes on every cloud it has a native image for —
native id, login user, flavor, security groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slipway.domain.clouds import Cloud
from slipway.domain.inheritance import (
    ChainLink,
    InheritanceCycle,
    InheritedWithoutParent,
    MissingParent,
    Resolved,
    build_chain,
    resolve_chain,
)
from slipway.domain.modules import Kind, ModuleRef
from slipway.domain.security import GroupDefinition, GroupPlan, plan_security_groups
from slipway.domain.sizes import FlavorPick, NoFlavorFits, Size, UnknownInstanceType, resolve_size
from slipway.errors import InputError, NotFound
from slipway.services.modules import Module, Modules

__all__ = ["CloudTarget", "ResolvedDefinition", "effective_size", "resolve_module"]


@dataclass(frozen=True)
class CloudTarget:
    """What a definition becomes on one cloud. ``problem`` is set instead of
    ``pick`` when no flavor fits or the instance type is unknown."""

    cloud: Cloud
    native_id: str
    login_user: str | None
    instance_type: str | None
    pick: FlavorPick | None = None
    problem: str | None = None
    groups: tuple[GroupPlan, ...] = ()


@dataclass(frozen=True)
class ResolvedDefinition:
    module: Module
    resolved: Resolved
    size: Size
    targets: dict[str, CloudTarget] = field(default_factory=dict)

    @property
    def document(self) -> dict[str, Any]:
        return self.resolved.document

    @property
    def warnings(self) -> list[str]:
        seen: dict[str, None] = {}
        for target in self.targets.values():
            if target.pick is not None:
                seen.update(dict.fromkeys(target.pick.warnings))
            for plan in target.groups:
                if plan.warning:
                    seen[plan.warning] = None
        return list(seen)


def effective_size(document: dict[str, Any]) -> Size:
    size = document.get("size") or {}
    return Size(cpu=size.get("cpu"), ram=size.get("ram"), disk=size.get("disk"))


def chain_of(modules: Modules, module: Module) -> list[ChainLink]:
    """The hierarchy of ``module``, root first, with errors naming the files."""
    by_label: dict[str, Module] = {module.label: module}

    def lookup(reference: str) -> ChainLink | None:
        try:
            ref = ModuleRef.parse(reference)
        except ValueError:
            return None
        found = modules.get(ref)
        if found is None:
            return None
        by_label[found.label] = found
        return found.link()

    try:
        chain = build_chain(module.link(), lookup)
    except MissingParent as exc:
        child = by_label[exc.link.label]
        raise modules.missing(
            child,
            exc.key,
            exists=f"{exc.key} {exc.reference!r} does not exist",
            refused=f"{exc.key} {exc.reference!r} names no module {modules.who} may view",
            hint="import it first, or fix the name",
        ) from None
    except InheritanceCycle as exc:
        first = by_label[exc.links[0].label]
        raise first.error(str(exc), "parent") from None
    for link in chain[:-1]:
        parent = by_label[link.label]
        if parent.kind is not Kind.IMAGE:
            child = next(
                by_label[c.label]
                for c in chain
                if c.up and ModuleRef.parse(c.up).name == parent.name
            )
            key = "parent" if child.kind is Kind.IMAGE else "image"
            raise child.error(f"{key} {parent.name!r} is a {parent.kind}, not an image", key)
    return chain


def resolve_module(
    modules: Modules, module: Module, *, clouds: list[str] | None = None
) -> ResolvedDefinition:
    """Resolve ``module`` (an image or component) against ``modules``.

    ``clouds`` limits the targets to those clouds (by default every cloud it
    has a native image for that the viewer may use).
    """
    if module.kind not in (Kind.IMAGE, Kind.COMPONENT):
        raise InputError(f"{module.label} is a {module.kind}; only images and components resolve")
    chain = chain_of(modules, module)
    try:
        resolved = resolve_chain(chain)
    except InheritedWithoutParent as exc:
        raise module.error("'inherited' needs a parent to inherit from", exc.key) from None
    size = effective_size(resolved.document)
    targets: dict[str, CloudTarget] = {}
    native = resolved.document.get("native", {})
    if clouds is None:
        clouds = sorted(c for c in native if c in modules.clouds())
    groups = (
        modules.security_groups(module, resolved.document.get("security_groups")) if clouds else {}
    )
    for name in clouds:
        targets[name] = _target(modules, resolved.document, name, size, groups)
    return ResolvedDefinition(module, resolved, size, targets)


def _target(
    modules: Modules,
    document: dict[str, Any],
    name: str,
    size: Size,
    declared: dict[str, GroupDefinition],
) -> CloudTarget:
    cloud = modules.cloud(name)
    native = document.get("native", {}).get(name)
    if native is None:
        have = ", ".join(sorted(document.get("native", {}))) or "none"
        raise NotFound(
            f"there is no native image for cloud {name!r}", hint=f"it has native images for: {have}"
        )
    instance_type = document.get("clouds", {}).get(name, {}).get("instance_type")
    groups = tuple(
        plan_security_groups(
            document.get("security_groups"), {cloud.name: cloud.security_groups}, declared
        )
    )
    common: dict[str, Any] = {
        "cloud": cloud,
        "native_id": native["id"],
        "instance_type": instance_type,
        "login_user": native.get("login_user") or document.get("login_user"),
        "groups": groups,
    }
    try:
        pick = resolve_size(modules.catalog(cloud.catalog), size, instance_type)
    except (NoFlavorFits, UnknownInstanceType) as exc:
        return CloudTarget(**common, problem=str(exc))
    return CloudTarget(**common, pick=pick)
