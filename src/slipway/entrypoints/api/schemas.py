"""The API's response and request bodies, and their conversion from the
services' values. Names match the CLI's ``--output json``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from slipway.domain.clouds import Cloud
from slipway.domain.diff import Change
from slipway.domain.modules import ModuleVersion, Right
from slipway.domain.sizes import Flavor, FlavorPick
from slipway.services.ports import ListedModule
from slipway.services.resolve import ResolvedDefinition

__all__ = [
    "NO_NUL",
    "CloudOut",
    "CopyIn",
    "DiffOut",
    "FlavorOut",
    "ModuleItem",
    "ModulePage",
    "ResolvedOut",
    "RightsIn",
    "VersionOut",
]


NO_NUL = r"^[^\x00]*$"
"""Text fields that reach the store: PostgreSQL cannot hold a NUL character."""


class RightsOut(BaseModel):
    owner: str
    group: str | None
    group_rights: list[Right]
    public_rights: list[Right]


class VersionOut(BaseModel):
    name: str
    kind: str
    version: int
    author: str
    created_at: datetime
    rights: RightsOut
    copied_from: str | None
    comment: str
    source: str
    document: dict[str, Any] | None = None

    @classmethod
    def of(cls, version: ModuleVersion, *, document: bool = True) -> VersionOut:
        rights = version.rights
        return cls(
            name=version.name,
            kind=version.kind.value,
            version=version.version,
            author=version.author,
            created_at=version.created_at,
            rights=RightsOut(
                owner=rights.owner,
                group=rights.group,
                group_rights=sorted(rights.group_rights),
                public_rights=sorted(rights.public_rights),
            ),
            copied_from=version.copied_from,
            comment=version.comment,
            source=version.source,
            document=version.document if document else None,
        )


class ModuleItem(BaseModel):
    name: str
    kind: str
    version: int
    owner: str
    description: str
    os: str
    clouds: list[str]
    parent: str | None

    @classmethod
    def of(cls, row: ListedModule) -> ModuleItem:
        v, f = row.version, row.facets
        return cls(
            name=v.name,
            kind=v.kind.value,
            version=v.version,
            owner=v.rights.owner,
            description=f.description,
            os=f.os,
            clouds=list(f.clouds),
            parent=f.parent,
        )


class ModulePage(BaseModel):
    items: list[ModuleItem]
    total: int = Field(description="matches of all pages")
    limit: int | None
    offset: int


class FlavorOut(BaseModel):
    name: str
    cpu: int
    ram: float = Field(description="GB")
    disk: float | None = Field(description="GB")
    price: float | None

    @classmethod
    def of(cls, flavor: Flavor) -> FlavorOut:
        return cls(
            name=flavor.name, cpu=flavor.cpu, ram=flavor.ram, disk=flavor.disk, price=flavor.price
        )


class PickOut(BaseModel):
    flavor: FlavorOut
    explicit: bool
    warnings: list[str]

    @classmethod
    def of(cls, pick: FlavorPick | None) -> PickOut | None:
        if pick is None:
            return None
        return cls(
            flavor=FlavorOut.of(pick.flavor), explicit=pick.explicit, warnings=list(pick.warnings)
        )


class GroupOut(BaseModel):
    group: str = Field(description="as the definition names it")
    on_cloud: str = Field(description="the group's name on the cloud")
    declared_by: str = Field(description="the module declaring it; empty if Slipway does not")
    action: str
    warning: str


class SyncedOut(BaseModel):
    """Where a native id set by a provider sync came from."""

    subscription: str
    list_version: str
    version: str = Field(description="the appliance version (the list image's hv:version)")
    synced_at: datetime | None
    state: str = Field(description="active, or hidden once the list dropped it")


class TargetOut(BaseModel):
    native_id: str
    synced: SyncedOut | None = None
    login_user: str | None
    instance_type: str | None
    flavor: PickOut | None
    problem: str | None
    security_groups: list[GroupOut]


class ResolvedOut(BaseModel):
    name: str
    kind: str
    document: dict[str, Any]
    origin: dict[str, str] = Field(description="key path -> the module version it came from")
    hierarchy: list[str] = Field(description="root first")
    clouds: dict[str, TargetOut]
    warnings: list[str]

    @classmethod
    def of(cls, result: ResolvedDefinition) -> ResolvedOut:
        return cls(
            name=result.module.label,
            kind=result.module.kind.value,
            document=result.document,
            origin=dict(result.resolved.origin),
            hierarchy=[link.label for link in result.resolved.chain],
            clouds={
                name: TargetOut(
                    native_id=t.native_id,
                    synced=None
                    if t.synced is None
                    else SyncedOut(
                        subscription=t.synced.subscription,
                        list_version=t.synced.list_version,
                        version=t.synced.version,
                        synced_at=t.synced.synced_at,
                        state=t.synced.state.value,
                    ),
                    login_user=t.login_user,
                    instance_type=t.instance_type,
                    flavor=PickOut.of(t.pick),
                    problem=t.problem,
                    security_groups=[
                        GroupOut(
                            group=g.group,
                            on_cloud=g.on_cloud,
                            declared_by=g.declared_by,
                            action=g.action.value,
                            warning=g.warning,
                        )
                        for g in t.groups
                    ],
                )
                for name, t in result.targets.items()
            },
            warnings=result.warnings,
        )


class ChangeOut(BaseModel):
    path: str
    action: str
    old: Any = None
    new: Any = None


class DiffOut(BaseModel):
    old: str
    new: str
    changes: list[ChangeOut]

    @classmethod
    def of(cls, old: ModuleVersion, new: ModuleVersion, changes: list[Change]) -> DiffOut:
        return cls(
            old=old.label,
            new=new.label,
            changes=[
                ChangeOut(path=c.path, action=c.action, old=c.old, new=c.new) for c in changes
            ],
        )


class CloudOut(BaseModel):
    name: str
    driver: str
    region: str
    description: str
    security_groups: bool
    image_upload: bool
    catalog: str
    flavors: int
    details: dict[str, str] = Field(
        default_factory=dict,
        description="What the definition cannot tell, e.g. a local cloud's "
        "accelerator and accelerator_reason",
    )

    @classmethod
    def of(cls, cloud: Cloud, flavors: int, details: dict[str, str] | None = None) -> CloudOut:
        return cls(
            name=cloud.name,
            driver=cloud.driver,
            region=cloud.region,
            description=cloud.description,
            security_groups=cloud.security_groups,
            image_upload=cloud.image_upload,
            catalog=cloud.catalog,
            flavors=flavors,
            details=details or {},
        )


class CopyIn(BaseModel):
    destination: str = Field(min_length=1, max_length=400, examples=["alice/debian-12"])


class RightsIn(BaseModel):
    group: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    group_rights: list[Right] = []
    public_rights: list[Right] = []
