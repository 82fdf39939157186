"""The catalog store on SQLAlchemy: the same contract as :mod:`.memory`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from sqlalchemy import Engine, Select, select
from sqlalchemy.orm import Session, selectinload

from slipway.adapters.store._sql_attempts import SqlAttempts
from slipway.adapters.store._sql_credentials import SqlCredentials
from slipway.adapters.store._sql_search import SqlSearch
from slipway.adapters.store.runs_sql import SqlRunStore
from slipway.adapters.store.tables import GroupRow, MembershipRow, ModuleRow, UserRow, VersionRow
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


class SqlStore(SqlSearch, SqlCredentials, SqlAttempts):
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

    def _user(self, name: str) -> UserRow | None:
        return self.session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()

    def _group(self, name: str) -> GroupRow | None:
        return self.session.scalars(select(GroupRow).where(GroupRow.name == name)).one_or_none()

    def ensure_user(self, name: str, *, admin: bool = False) -> None:
        user = self._user(name)
        if user is None:
            self.session.add(UserRow(name=name, admin=admin, created_at=datetime.now(UTC)))
        elif admin:
            user.admin = True
        self.session.flush()

    def user_exists(self, name: str) -> bool:
        return self._user(name) is not None

    def has_users(self) -> bool:
        return self.session.scalars(select(UserRow.id).limit(1)).first() is not None

    def is_admin(self, name: str) -> bool:
        user = self._user(name)
        return bool(user and user.admin)

    def add_group(self, name: str) -> None:
        if self._group(name) is not None:
            raise Conflict(f"group {name} already exists")
        self.session.add(GroupRow(name=name))
        self.session.flush()

    def group_exists(self, name: str) -> bool:
        return self._group(name) is not None

    def add_member(self, group: str, user: str, *, editor: bool = False) -> None:
        group_row, user_row = self._group(group), self._user(user)
        if group_row is None:
            raise NotFound(f"group {group} does not exist")
        if user_row is None:
            raise NotFound(f"user {user} does not exist")
        membership = self.session.get(MembershipRow, (group_row.id, user_row.id))
        if membership is None:
            self.session.add(
                MembershipRow(group_id=group_row.id, user_id=user_row.id, editor=editor)
            )
        elif editor:
            membership.editor = True
        self.session.flush()

    def _memberships(self, user: str) -> Select[str]:
        return (
            select(GroupRow.name)
            .join(MembershipRow, MembershipRow.group_id == GroupRow.id)
            .join(UserRow, UserRow.id == MembershipRow.user_id)
            .where(UserRow.name == user)
        )

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(self.session.scalars(self._memberships(user)))

    def editor_of(self, user: str) -> frozenset[str]:
        query = self._memberships(user).where(MembershipRow.editor.is_(True))
        return frozenset(self.session.scalars(query))


class SqlUnitOfWork:
    """One session and transaction per ``with`` block; no commit, no change."""

    store: SqlStore
    runs: SqlRunStore

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._session: Session | None = None

    def __enter__(self) -> Self:
        # A plain Session: a sessionmaker per unit of work would build a class each time.
        self._session = Session(self._engine, expire_on_commit=False)
        self.store = SqlStore(self._session)
        self.runs = SqlRunStore(self._session)
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
