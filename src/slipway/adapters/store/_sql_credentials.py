"""Password hashes, API tokens and dashboard sessions in SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from slipway.adapters.store._times import utc
from slipway.adapters.store.tables import SessionRow, TokenRow, UserRow
from slipway.errors import NotFound
from slipway.services.ports import SessionRecord, TokenRecord

__all__ = ["SqlCredentials"]


class SqlCredentials:
    session: Session

    def _user_row(self, name: str) -> UserRow:
        row = self.session.scalars(select(UserRow).where(UserRow.name == name)).one_or_none()
        if row is None:
            raise NotFound(f"user {name} does not exist")
        return row

    def set_password_hash(self, user: str, password_hash: str) -> None:
        self._user_row(user).password_hash = password_hash
        self.session.flush()

    def password_hash(self, user: str) -> str | None:
        return self.session.scalar(select(UserRow.password_hash).where(UserRow.name == user))

    def has_passwords(self) -> bool:
        query = select(UserRow.id).where(UserRow.password_hash.is_not(None)).limit(1)
        return self.session.scalar(query) is not None

    def add_token(self, user: str, name: str, token_hash: str, created_at: datetime) -> int:
        row = TokenRow(
            user_id=self._user_row(user).id, name=name, token_hash=token_hash, created_at=created_at
        )
        self.session.add(row)
        self.session.flush()
        return row.id

    def token_user(self, token_hash: str) -> str | None:
        query = (
            select(UserRow.name)
            .join(TokenRow, TokenRow.user_id == UserRow.id)
            .where(TokenRow.token_hash == token_hash)
        )
        return self.session.scalar(query)

    def tokens_of(self, user: str) -> Sequence[TokenRecord]:
        query = (
            select(TokenRow)
            .join(UserRow, TokenRow.user_id == UserRow.id)
            .where(UserRow.name == user)
            .order_by(TokenRow.id)
        )
        return [
            TokenRecord(row.id, user, row.name, utc(row.created_at))
            for row in self.session.scalars(query)
        ]

    def delete_token(self, user: str, token_id: int) -> bool:
        row = self.session.get(TokenRow, token_id)
        if row is None or row.user_id != self._user_row(user).id:
            return False
        self.session.delete(row)
        self.session.flush()
        return True

    def add_session(self, token_hash: str, record: SessionRecord) -> None:
        self.session.add(
            SessionRow(
                user_id=self._user_row(record.user).id,
                token_hash=token_hash,
                csrf=record.csrf,
                expires_at=record.expires_at,
            )
        )
        self.session.flush()

    def session_of(self, token_hash: str) -> SessionRecord | None:
        query = (
            select(UserRow.name, SessionRow.csrf, SessionRow.expires_at)
            .join(SessionRow, SessionRow.user_id == UserRow.id)
            .where(SessionRow.token_hash == token_hash)
        )
        row = self.session.execute(query).one_or_none()
        return SessionRecord(row[0], row[1], utc(row[2])) if row else None

    def delete_session(self, token_hash: str) -> None:
        self.session.execute(delete(SessionRow).where(SessionRow.token_hash == token_hash))
        self.session.flush()

    def end_sessions(self, user: str) -> None:
        of_user = select(UserRow.id).where(UserRow.name == user).scalar_subquery()
        self.session.execute(delete(SessionRow).where(SessionRow.user_id == of_user))
        self.session.flush()

    def expire_sessions(self, now: datetime) -> None:
        self.session.execute(delete(SessionRow).where(SessionRow.expires_at < now))
        self.session.flush()
