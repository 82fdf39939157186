"""Log-in attempts in SQL, counted safely by several server processes.

Counting a try reads a row and writes it back; two processes doing so at once
must not both read the old count. The row is made first when missing (``INSERT
… ON CONFLICT DO NOTHING``: a write, so on SQLite the transaction holds the
database's write lock from then on) and then read ``FOR UPDATE`` (PostgreSQL
locks the row until commit). Expiry skips rows others hold, so it never waits
on a log-in in flight.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from slipway.adapters.store._times import utc
from slipway.adapters.store.tables import LoginAttemptRow
from slipway.domain.lockouts import Attempts

__all__ = ["EXPIRE_BATCH", "SqlAttempts"]

EXPIRE_BATCH = 1000
# The times of the row made to be locked before the first count: it counts
# nothing and is already expired, so expiry removes it if no count follows.
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SqlAttempts:
    session: Session

    def attempts_for_update(self, subject: str) -> Attempts | None:
        values = {"subject": subject, "count": 0, "window_start": _EPOCH, "expires_at": _EPOCH}
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        self.session.execute(insert(LoginAttemptRow).values(**values).on_conflict_do_nothing())
        row = self.session.scalars(
            select(LoginAttemptRow)
            .where(LoginAttemptRow.subject == subject)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).one()
        if row.count == 0:
            return None
        locked = utc(row.locked_until) if row.locked_until else None
        return Attempts(row.count, utc(row.window_start), locked)

    def save_attempts(self, subject: str, attempts: Attempts, expires_at: datetime) -> None:
        row = self.session.get(LoginAttemptRow, subject)
        if row is None:
            row = LoginAttemptRow(subject=subject)
            self.session.add(row)
        row.count = attempts.count
        row.window_start = attempts.window_start
        row.locked_until = attempts.locked_until
        row.expires_at = expires_at
        self.session.flush()

    def clear_attempts(self, subject: str) -> None:
        self.session.execute(delete(LoginAttemptRow).where(LoginAttemptRow.subject == subject))
        self.session.flush()

    def expire_attempts(self, now: datetime) -> None:
        # At most a batch a call: each log-in adds at most two rows and forgets
        # up to a thousand, so the table cannot outgrow the tries of a window.
        expired = list(
            self.session.scalars(
                select(LoginAttemptRow.subject)
                .where(LoginAttemptRow.expires_at < now)
                .limit(EXPIRE_BATCH)
                .with_for_update(skip_locked=True)  # SQLite: one writer at a time anyway
            )
        )
        if expired:
            self.session.execute(
                delete(LoginAttemptRow).where(
                    LoginAttemptRow.subject.in_(expired),
                    LoginAttemptRow.expires_at < now,  # unless counted again meanwhile
                )
            )
            self.session.flush()
