"""Search facets: what each module is listed and filtered by (description,
OS, clouds after inheritance, parent), kept in the store on every write so
that lists of any size filter and page in the store."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass

from slipway.domain.modules import Kind, ModuleRef, ModuleVersion
from slipway.errors import SlipwayError
from slipway.services.identity import access_of
from slipway.services.modules import Module, Modules
from slipway.services.ports import CatalogStore, Facets, IdentityStore, ListedModule
from slipway.services.resolve import resolve_module

__all__ = ["Page", "facets_for", "refresh_facets"]


@dataclass(frozen=True)
class Page:
    """One page of a list: ``items`` from ``offset``, of ``total`` matches."""

    items: list[ListedModule]
    total: int
    limit: int | None
    offset: int


def _parent(version: ModuleVersion) -> str | None:
    reference = version.document.get("parent") or version.document.get("image")
    if not isinstance(reference, str):
        return None
    try:
        return ModuleRef.parse(reference).name
    except ValueError:
        return None


def facets_for(modules: Modules, version: ModuleVersion) -> Facets:
    """The facets of ``version``; a definition that no longer resolves (its
    parent went missing) is indexed by its own document."""
    document = version.document
    if version.kind in (Kind.IMAGE, Kind.COMPONENT):
        with suppress(SlipwayError):
            document = resolve_module(modules, Module.from_store(version), clouds=[]).document
    os = document.get("os")
    return Facets(
        description=str(document.get("description") or ""),
        os=str(os.get("distribution") or "") if isinstance(os, dict) else "",
        clouds=tuple(sorted(document.get("native") or {})),
        parent=_parent(version),
    )


def refresh_facets(store: CatalogStore, people: IdentityStore, names: Iterable[str]) -> int:
    """Recompute the facets of ``names`` and of every module inheriting from
    them (a parent's new native image changes its children's clouds).
    Each module is resolved as its owner sees the catalog, so its facets never
    show what a parent its owner may no longer view says.
    Returns how many modules were indexed."""
    by_owner: dict[str, Modules] = {}
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        latest = store.latest(name)
        if latest is None:
            continue
        owner = latest.rights.owner
        if owner not in by_owner:
            by_owner[owner] = Modules(store, viewer=access_of(people, owner), people=people)
        store.set_facets(name, facets_for(by_owner[owner], latest))
        pending.extend(store.children(name))
    return len(seen)
