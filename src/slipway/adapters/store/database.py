"""Engines and migrations: a SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from slipway.adapters.private_files import private_file
from slipway.errors import InputError, SlipwayError

__all__ = ["make_engine", "migrate"]

MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0008"
"""The newest migration; a test checks it against the migration scripts."""


def make_engine(url: str) -> Engine:
    """An engine for ``url``; a SQLite file (0600) and its folder (0700) are
    created when missing."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError(f"database URL {url!r} is not valid: {exc}") from exc
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"timeout": WRITE_WAIT_S}
        if parsed.database and parsed.database != ":memory:":
            private_file(Path(parsed.database).expanduser())
            # Connections to a file are cheap; a worker thread should not queue for one.
            kwargs.update(pool_size=16, max_overflow=48)
    elif parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
        _one_writer_at_a_time(engine)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


WRITE_WAIT_S = 30.0
_READS = ("SELECT", "PRAGMA")


def _one_writer_at_a_time(engine: Engine) -> None:
    """Make this process's writers queue on a lock instead of on SQLite.

    SQLite has one writer at a time. A connection that finds the database
    locked sleeps in SQLite's busy handler, 1 ms at first and up to 100 ms a
    try, so with a dozen threads writing at once most of a short transaction's
    time went to sleeping after the lock was free again. Here a transaction
    takes the process's writer lock before its first write (pysqlite opens the
    transaction right then) and gives it back when it commits or rolls back;
    other processes still meet SQLite's own lock and busy timeout. A thread
    that opens a second writing transaction while holding the lock waits on
    SQLite, as before, rather than on itself."""
    lock = threading.Lock()  # not an RLock: the pool may check a connection in elsewhere
    holder: list[int | None] = [None]

    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if conn.info.get("writing") or statement.lstrip()[:6].upper().startswith(_READS):
            return
        if holder[0] == threading.get_ident():
            return
        if not lock.acquire(timeout=WRITE_WAIT_S):
            raise SlipwayError(
                f"the database {engine.url.database} stayed locked for {WRITE_WAIT_S:g} s"
            )
        holder[0] = threading.get_ident()
        conn.info["writing"] = True

    def done(info: dict[str, Any]) -> None:
        if info.pop("writing", False):
            holder[0] = None
            lock.release()

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", lambda conn: done(conn.info))
    event.listen(engine, "rollback", lambda conn: done(conn.info))
    # The pool's safety net: a connection handed back mid-transaction.
    event.listen(engine, "checkin", lambda _dbapi, record: done(record.info))


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    if _current_revision(engine) == HEAD:
        return  # the common case, without loading Alembic at all
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except OperationalError as exc:
        raise SlipwayError(
            f"cannot reach the database at {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.orig}",
            hint="check SLIPWAY_DATABASE_URL",
        ) from exc


def _current_revision(engine: Engine) -> str | None:
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table("alembic_version"):
                return None
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError:
        return None
