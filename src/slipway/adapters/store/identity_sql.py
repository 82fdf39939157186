"""Users, groups and credentials on SQLAlchemy: the same contract as
:mod:`.identity_memory`. Password hashes, tokens and sessions are in
:mod:`._sql_credentials`, log-in attempts in :mod:`._sql_attempts`."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from slipway.adapters.store._sql_attempts import SqlAttempts
from slipway.adapters.store._sql_credentials import SqlCredentials
from slipway.adapters.store.tables import GroupRow, MembershipRow, UserRow
from slipway.errors import Conflict, NotFound

__all__ = ["SqlIdentityStore"]


class SqlIdentityStore(SqlCredentials, SqlAttempts):
    def __init__(self, session: Session) -> None:
        self.session = session

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
