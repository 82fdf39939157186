"""Times read back from the store, as the domain wants them: aware, in UTC.

SQLite keeps no zone (a ``DateTime(timezone=True)`` comes back naive, and
Slipway only ever writes UTC); PostgreSQL gives the session's offset, which
``email.utils.format_datetime(usegmt=True)`` and friends refuse."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc", "utc_or_none"]


def utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)
