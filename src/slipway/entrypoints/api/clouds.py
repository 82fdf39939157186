"""``/api/clouds`` and ``/api/sizes``: clouds, their flavors, and the flavor
a size resolves to on each cloud."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from slipway.domain.sizes import MAX_CPU, MAX_DISK_GB, MAX_RAM_GB, Size, sorted_flavors
from slipway.entrypoints.api.deps import Catalog, services
from slipway.entrypoints.api.schemas import CloudOut, FlavorOut, PickOut

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["clouds and sizes"])


class SizeRowOut(BaseModel):
    cloud: str
    catalog: str
    flavor: PickOut | None
    problem: str | None


@router.get("/clouds", summary="Every cloud with its driver, capabilities and catalog")
def clouds(catalog: Catalog, request: Request) -> list[CloudOut]:
    details = services(request).cloud_details
    return [
        CloudOut.of(cloud, len(found.flavors), details(cloud)) for cloud, found in catalog.clouds()
    ]


@router.get("/clouds/{name}/flavors", summary="A cloud's flavors, smallest first")
def flavors(name: str, catalog: Catalog) -> list[FlavorOut]:
    _, found = catalog.flavors(name)
    return [FlavorOut.of(f) for f in sorted_flavors(found.flavors)]


@router.get("/sizes", summary="The flavor a size resolves to on every cloud")
def sizes(
    catalog: Catalog,
    cpu: Annotated[int | None, Query(ge=1, le=MAX_CPU)] = None,
    ram: Annotated[float | None, Query(gt=0, le=MAX_RAM_GB, description="GB")] = None,
    disk: Annotated[float | None, Query(gt=0, le=MAX_DISK_GB, description="GB")] = None,
    cloud: Annotated[list[str] | None, Query(description="default: every cloud")] = None,
) -> list[SizeRowOut]:
    rows = catalog.size_table(Size(cpu, ram, disk), cloud or None)
    return [
        SizeRowOut(
            cloud=row.cloud.name,
            catalog=row.catalog,
            flavor=PickOut.of(row.pick),
            problem=row.problem,
        )
        for row in rows
    ]
