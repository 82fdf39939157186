"""Size resolution across clouds: the table ``slipway sizes resolve`` prints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from slipway.domain.clouds import Cloud
from slipway.domain.sizes import FlavorPick, NoFlavorFits, Size, UnknownInstanceType, resolve_size
from slipway.services.modules import Modules

__all__ = ["SizeRow", "resolve_everywhere"]


@dataclass(frozen=True)
class SizeRow:
    """One cloud's answer: a ``pick`` or, when nothing fits, a ``problem``."""

    cloud: Cloud
    catalog: str
    pick: FlavorPick | None
    problem: str | None = None


def resolve_everywhere(modules: Modules, size: Size, clouds: Sequence[str]) -> list[SizeRow]:
    rows = []
    for name in clouds:
        cloud = modules.cloud(name)
        catalog = modules.catalog(cloud.catalog)
        try:
            rows.append(SizeRow(cloud, catalog.name, resolve_size(catalog, size)))
        except (NoFlavorFits, UnknownInstanceType) as exc:
            rows.append(SizeRow(cloud, catalog.name, None, str(exc)))
    return rows
