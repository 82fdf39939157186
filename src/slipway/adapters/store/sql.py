"""The catalog store on SQLAlchemy, the same contract as :mod:`.memory`, and
the unit of work over the SQL stores (catalog, identity, runs): one session,
one transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from types import TracebackType
from typing import Self

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, selectinload

from slipway.adapters.store._sql_search import SqlSearch
from slipway.adapters.store.identity_sql import SqlIdentityStore
from slipway.adapters.store.market_sql import SqlMarketStore
from slipway.adapters.store.runs_sql import SqlRunStore
from slipway.adapters.store.sync_sql import SqlSyncStore
from slipway.adapters.store.tables import ModuleRow, VersionRow
from slipway.domain.modules import Kind, ModuleVersion, Rights, parse_rights
from slipway.errors import Conflict, NotFound

__all__ = ["SqlStore", "SqlUnitOfWork", "version_of"]


def _rights(row: ModuleRow) -> Rights:
    return Rights(
        row.owner, row.group_name, parse_rights(row.group_rights), parse_rights(row.public_rights)
    )


def version_of(module: ModuleRow, row: VersionRow) -> ModuleVersion:
    created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
    return ModuleVersion(
        name=module.name,
        kind=Kind(module.kind),
        version=row.version,
        document=row.document,
        rights=_rights(module),
        author=row.author,
        created_at=created,
        source=row.source,
        copied_from=row.copied_from,
        comment=row.comment,
        content_hash=row.content_hash,
    )


def _join(rights: frozenset[str]) -> str:
    return ",".join(sorted(rights))


class SqlStore(SqlSearch):
    def __init__(self, session: Session) -> None:
        self.session = session

    def _module(self, name: str) -> ModuleRow | None:
        return self.session.scalars(select(ModuleRow).where(ModuleRow.name == name)).one_or_none()

    def _at(self, name: str, version: int | None) -> ModuleVersion | None:
        query = select(ModuleRow, VersionRow).join(VersionRow).where(ModuleRow.name == name)
        if version is None:
            query = query.where(VersionRow.version == ModuleRow.latest_version)
        else:
            query = query.where(VersionRow.version == version)
        row = self.session.execute(query).one_or_none()
        return version_of(row[0], row[1]) if row else None

    def latest(self, name: str) -> ModuleVersion | None:
        return self._at(name, None)

    def get(self, name: str, version: int) -> ModuleVersion | None:
        return self._at(name, version)

    def versions(self, name: str) -> Sequence[ModuleVersion]:
        module = self.session.scalars(
            select(ModuleRow)
            .where(ModuleRow.name == name)
            .options(selectinload(ModuleRow.versions))
        ).one_or_none()
        return [version_of(module, v) for v in module.versions] if module else []

    def list_latest(self, kind: Kind | None = None) -> Sequence[ModuleVersion]:
        query = (
            select(ModuleRow, VersionRow)
            .join(VersionRow)
            .where(VersionRow.version == ModuleRow.latest_version)
            .order_by(ModuleRow.name)
        )
        if kind is not None:
            query = query.where(ModuleRow.kind == kind.value)
        return [version_of(m, v) for m, v in self.session.execute(query)]

    def add_version(self, version: ModuleVersion) -> None:
        module = self._module(version.name)
        expected = 1 if module is None else module.latest_version + 1
        if version.version != expected:
            raise Conflict(
                f"{version.name}: version {version.version} is not the next one "
                f"({expected}); someone saved it meanwhile"
            )
        if module is None:
            rights = version.rights
            module = ModuleRow(
                name=version.name,
                kind=version.kind.value,
                owner=rights.owner,
                group_name=rights.group,
                group_rights=_join(rights.group_rights),
                public_rights=_join(rights.public_rights),
                latest_version=0,
            )
            self.session.add(module)
        elif module.kind != version.kind.value:
            raise Conflict(f"{version.name} is a {module.kind}, not a {version.kind}")
        module.latest_version = version.version
        self.session.add(
            VersionRow(
                module=module,
                version=version.version,
                document=version.document,
                content_hash=version.content_hash,
                author=version.author,
                created_at=version.created_at,
                source=version.source,
                copied_from=version.copied_from,
                comment=version.comment,
            )
        )
        self.session.flush()

    def set_rights(self, name: str, rights: Rights) -> None:
        module = self._module(name)
        if module is None:
            raise NotFound(f"module {name} does not exist")
        module.owner = rights.owner
        module.group_name = rights.group
        module.group_rights = _join(rights.group_rights)
        module.public_rights = _join(rights.public_rights)
        self.session.flush()


class SqlUnitOfWork:
    """One session and transaction per ``with`` block; no commit, no change."""

    store: SqlStore
    identity: SqlIdentityStore
    runs: SqlRunStore
    market: SqlMarketStore
    sync: SqlSyncStore

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session: Session | None = None

    def __enter__(self) -> Self:
        # A plain Session: a sessionmaker per unit of work would build a class each time.
        self._session = Session(self._engine, expire_on_commit=False)
        self.store = SqlStore(self._session)
        self.identity = SqlIdentityStore(self._session)
        self.runs = SqlRunStore(self._session)
        self.market = SqlMarketStore(self._session)
        self.sync = SqlSyncStore(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._session is not None
        self._session.rollback()
        self._session.close()
        self._session = None

    def commit(self) -> None:
        assert self._session is not None
        self._session.commit()

    def rollback(self) -> None:
        assert self._session is not None
        self._session.rollback()
