"""Search over the latest versions in SQL: filters, rights and paging are
in the query, so a page of a 10,000-module catalog costs one indexed query
and one count."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, false, func, or_, select
from sqlalchemy.orm import Session

from slipway.adapters.store.tables import ModuleRow, VersionRow
from slipway.domain.modules import Kind
from slipway.errors import NotFound
from slipway.services.ports import Facets, ListedModule, ModuleQuery

__all__ = ["SqlSearch", "facets_of"]


def facets_of(row: ModuleRow) -> Facets:
    clouds = tuple(c for c in (row.clouds or "").split(",") if c)
    return Facets(row.description, row.os, clouds, row.parent)


def _conditions(query: ModuleQuery, *, by_name: bool) -> list[ColumnElement[bool]]:
    # Without statistics SQLite picks the kind index for a list of images,
    # which matches nearly every row and then sorts them all; `kind || ''`
    # cannot use it, so it walks the name index and stops after one page.
    kind = ModuleRow.kind.concat("") if by_name else ModuleRow.kind
    found: list[ColumnElement[bool]] = [kind.in_([k.value for k in query.kinds])]
    if query.text:
        pattern = f"%{query.text.lower()}%"
        found.append(
            or_(
                func.lower(ModuleRow.name).like(pattern, escape="\\"),
                func.lower(ModuleRow.description).like(pattern, escape="\\"),
            )
        )
    if query.os:
        found.append(ModuleRow.os == query.os)
    if query.cloud:
        found.append(ModuleRow.clouds.contains(f",{query.cloud},", autoescape=True))
    if query.owner:
        found.append(ModuleRow.owner == query.owner)
    viewer = query.viewer
    if viewer is not None and not viewer.admin:
        # Access.rights_on: any right granted implies view.
        found.append(
            or_(
                ModuleRow.owner == viewer.user,
                ModuleRow.public_rights != "",
                and_(ModuleRow.group_name.in_(sorted(viewer.groups)), ModuleRow.group_rights != "")
                if viewer.groups
                else false(),
            )
        )
    return found


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SqlSearch:
    session: Session

    def _row(self, name: str) -> ModuleRow | None:
        return self.session.scalars(select(ModuleRow).where(ModuleRow.name == name)).one_or_none()

    def set_facets(self, name: str, facets: Facets) -> None:
        row = self._row(name)
        if row is None:
            raise NotFound(f"module {name} does not exist")
        row.description = facets.description
        row.os = facets.os
        row.clouds = "," + ",".join(facets.clouds) + "," if facets.clouds else ","
        row.parent = facets.parent
        self.session.flush()

    def unindexed(self) -> Sequence[str]:
        return list(
            self.session.scalars(
                select(ModuleRow.name).where(ModuleRow.clouds.is_(None)).order_by(ModuleRow.name)
            )
        )

    def children(self, name: str) -> Sequence[str]:
        return list(
            self.session.scalars(
                select(ModuleRow.name).where(ModuleRow.parent == name).order_by(ModuleRow.name)
            )
        )

    def search(self, query: ModuleQuery) -> tuple[Sequence[ListedModule], int]:
        from slipway.adapters.store.sql import version_of

        if query.text:
            query = _with_text(query, _escape_like(query.text))
        by_name = self.session.get_bind().dialect.name == "sqlite" and Kind.IMAGE in query.kinds
        conditions = _conditions(query, by_name=by_name)
        # The count reads only ix_modules_access when no other filter is given.
        counted = _conditions(query, by_name=False)
        total = self.session.scalar(select(func.count(ModuleRow.id)).where(*counted)) or 0
        # Pick the page's ids on the narrow modules table first, then fetch
        # only those documents: skipping 4,000 rows never sorts their JSON.
        ids = select(ModuleRow.id).where(*conditions).order_by(ModuleRow.name).offset(query.offset)
        if query.limit is not None:
            ids = ids.limit(query.limit)
        chosen = ids.subquery()
        page = (
            select(ModuleRow, VersionRow)
            .join(chosen, chosen.c.id == ModuleRow.id)
            .join(
                VersionRow,
                and_(
                    VersionRow.module_id == ModuleRow.id,
                    VersionRow.version == ModuleRow.latest_version,
                ),
            )
            .order_by(ModuleRow.name)
        )
        rows = [
            ListedModule(version_of(module, version), facets_of(module))
            for module, version in self.session.execute(page)
        ]
        return rows, total


def _with_text(query: ModuleQuery, text: str) -> ModuleQuery:
    from dataclasses import replace

    return replace(query, text=text)
