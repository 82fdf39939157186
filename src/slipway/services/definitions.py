"""Check definitions against each other: references, clouds, catalogs,
instance types, inheritance, sizes and security groups.

Errors name file, line and key and are collected across all modules, so one
run shows every problem. Warnings (no flavor fits one cloud, a group that must
already exist, the wide-open default group) do not fail validation. A reference
to a module the viewer may not view is refused (:class:`RefusedReference`)
rather than reported as wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from slipway.connectors.limits import limits_of
from slipway.domain.clouds import local_image_id_problem
from slipway.domain.modules import INHERITED, Kind, ModuleRef
from slipway.domain.security import MANAGED_GROUP
from slipway.domain.sizes import UnknownInstanceType
from slipway.errors import (
    DefinitionError,
    DefinitionErrors,
    NotFound,
    RefusedReference,
    SlipwayError,
)
from slipway.services.modules import Module, Modules
from slipway.services.resolve import effective_size, resolve_module

__all__ = ["Report", "validate"]


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    errors: list[DefinitionError] = field(default_factory=list)
    refused: list[RefusedReference] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def raise_errors(self) -> None:
        """Raise the refused references, if any, else the errors, if any."""
        if self.refused:
            raise RefusedReference.together(self.refused)
        DefinitionErrors.raise_if_any(self.errors)


def validate(modules: Modules, names: Iterable[str]) -> Report:
    """Check the modules named ``names`` (usually every file just read)."""
    report = Report()
    try:
        modules.clouds()
    except DefinitionError as exc:
        report.errors.append(exc)
        return report
    for name in names:
        module = modules.require(name)
        report.checked.append(module.name)
        try:
            _CHECKS[module.kind](modules, module, report)
        except RefusedReference as exc:
            report.refused.extend(exc.errors)
        except DefinitionErrors as exc:
            report.errors.extend(exc.errors)
        except DefinitionError as exc:
            report.errors.append(exc)
        except (NotFound, SlipwayError) as exc:
            report.errors.append(module.error(exc.message))
    return report


def _check_cloud(modules: Modules, module: Module, report: Report) -> None:
    reference = module.document["catalog"]
    try:
        target = modules.get(ModuleRef.parse(reference))
    except ValueError as exc:
        raise module.error(str(exc), "catalog") from None
    if target is None:
        raise modules.missing(
            module,
            "catalog",
            exists=f"catalog {reference!r} does not exist",
            refused=f"catalog {reference!r} names no module {modules.who} may view",
        )
    if target.kind is not Kind.CATALOG:
        raise module.error(f"{reference!r} is a {target.kind}, not a catalog", "catalog")
    claimed = module.document.get("capabilities", {})
    for capability, reason in limits_of(module.document["driver"]).items():
        if claimed.get(capability.value):
            report.warn(
                f"{module.name}: capabilities.{capability.value} is claimed, but the "
                f"{module.document['driver']} driver cannot: {reason}; it is taken as false"
            )


def _check_definition(modules: Modules, module: Module, report: Report) -> None:
    clouds = modules.clouds()
    doc = module.document
    errors: list[DefinitionError] = []
    refused: list[RefusedReference] = []
    for section in ("native", "clouds"):
        for cloud in doc.get(section) or {}:
            if cloud not in clouds:
                known = ", ".join(sorted(clouds)) or "none"
                error = modules.missing(
                    module,
                    section,
                    cloud,
                    exists=f"unknown cloud {cloud!r} (known clouds: {known})",
                    refused=f"{cloud!r} is not a cloud {modules.who} may use "
                    f"(clouds {modules.who} may use: {known})",
                )
                if isinstance(error, RefusedReference):
                    refused.append(error)
                else:
                    errors.append(error)
    for cloud, conf in (doc.get("clouds") or {}).items():
        instance_type = conf.get("instance_type") if isinstance(conf, dict) else None
        if cloud not in clouds or not isinstance(instance_type, str) or instance_type == INHERITED:
            continue
        catalog = modules.catalog(clouds[cloud][0].catalog)
        if catalog.get(instance_type) is None:
            exc = UnknownInstanceType(
                catalog.name, instance_type, [f.name for f in catalog.flavors]
            )
            errors.append(module.error(str(exc), "clouds", cloud, "instance_type"))
    for cloud, native in (doc.get("native") or {}).items():
        image_id = native.get("id") if isinstance(native, dict) else None
        if cloud in clouds and clouds[cloud][0].driver == "local" and isinstance(image_id, str):
            problem = local_image_id_problem(image_id)
            if problem:
                errors.append(module.error(problem, "native", cloud, "id"))
    for reference_key in ("parent", "image"):
        reference = doc.get(reference_key)
        if isinstance(reference, str):
            try:
                ModuleRef.parse(reference)
            except ValueError as exc:
                errors.append(module.error(str(exc), reference_key))
    if refused:
        raise RefusedReference.together(refused)
    DefinitionErrors.raise_if_any(errors)

    resolved = resolve_module(modules, module, clouds=[])
    for key, message in effective_size(resolved.document).problems():
        raise module.error(message, "size", key)
    modules.security_groups(module, resolved.document.get("security_groups"))
    natives = [c for c in resolved.document.get("native", {}) if c in clouds]
    full = resolve_module(modules, module, clouds=natives)
    for target in full.targets.values():
        if target.problem:
            report.warn(f"{module.name} on {target.cloud.name}: {target.problem}")
    for warning in full.warnings:
        report.warn(f"{module.name}: {warning}")


def _check_nothing(modules: Modules, module: Module, report: Report) -> None:
    """Catalogs are fully checked by their file format."""


def _check_security_group(modules: Modules, module: Module, report: Report) -> None:
    """A group's name is its owner's to give once; other owners may use it too."""
    name = module.document["name"]
    if name == MANAGED_GROUP:
        raise module.error(
            f"{MANAGED_GROUP} is Slipway's default group and cannot be declared", "name"
        )
    owner = modules.owner_of(module)
    for other in modules.groups_named(owner, name):
        if other.name != module.name and modules.owner_of(other) == owner:
            raise module.error(
                f"security group {name!r} is also declared by {other.source}", "name"
            )


_CHECKS = {
    Kind.CLOUD: _check_cloud,
    Kind.IMAGE: _check_definition,
    Kind.COMPONENT: _check_definition,
    Kind.CATALOG: _check_nothing,
    Kind.SECURITY_GROUP: _check_security_group,
}
