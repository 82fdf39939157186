"""Resolve an image or component: its effective definition, where each value
came from, and what it becomes on every cloud it has a native image for —
native id, login user, flavor, security groups."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slipway.domain.clouds import Cloud
from slipway.domain.imagelists import version_key
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
from slipway.domain.sync import ImageState, SyncedImage
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
    synced: SyncedImage | None = None  # where the native id came from, for an appliance


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
    synced = _synced(modules, resolved.document.get("appliance"))
    if clouds is None:
        clouds = sorted(c for c in {*native, *synced} if c in modules.clouds())
    groups = (
        modules.security_groups(module, resolved.document.get("security_groups")) if clouds else {}
    )
    for name in clouds:
        targets[name] = _target(modules, resolved.document, name, size, groups, synced.get(name))
    return ResolvedDefinition(module, resolved, size, targets)


def _synced(modules: Modules, appliance: str | None) -> dict[str, SyncedImage]:
    """Cloud → the image a subscription synced of ``appliance``
    (``VO/NAME`` or ``VO/NAME@VERSION``): the one from the newest list
    version, preferring images still listed; a pinned version only."""
    if not appliance or modules.synced is None:
        return {}
    vo, _, rest = appliance.partition("/")
    name, _, version = rest.partition("@")
    best: dict[str, SyncedImage] = {}
    for cloud, image in modules.synced(vo, name):
        if version and image.version != version:
            continue
        if not version and image.state is not ImageState.ACTIVE:
            continue
        held = best.get(cloud)
        if held is None or _newer(image, held):
            best[cloud] = image
    return best


def _newer(a: SyncedImage, b: SyncedImage) -> bool:
    def rank(i: SyncedImage) -> tuple[Any, ...]:
        return (
            i.state is ImageState.ACTIVE,
            version_key(i.list_version),
            version_key(i.version),  # an OCI repository lists every version at once
            i.synced_at or i.updated_at,
        )

    return rank(a) > rank(b)


def _target(
    modules: Modules,
    document: dict[str, Any],
    name: str,
    size: Size,
    declared: dict[str, GroupDefinition],
    synced: SyncedImage | None = None,
) -> CloudTarget:
    cloud = modules.cloud(name)
    native = document.get("native", {}).get(name)
    if native is None and synced is not None and synced.native_id:
        native = {"id": synced.native_id}  # an id set by hand wins over a synced one
    else:
        synced = None
    if native is None:
        have = ", ".join(sorted(document.get("native", {}))) or "none"
        appliance = document.get("appliance")
        if appliance:
            raise NotFound(
                f"appliance {appliance} has not been synced to cloud {name!r} and the image "
                f"has no native id there",
                hint="an operator subscribes that cloud to the VO's list "
                f"(slipway subscription add); native ids are set for: {have}",
            )
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
        "synced": synced,
    }
    try:
        pick = resolve_size(modules.catalog(cloud.catalog), size, instance_type)
    except (NoFlavorFits, UnknownInstanceType) as exc:
        return CloudTarget(**common, problem=str(exc))
    return CloudTarget(**common, pick=pick)
