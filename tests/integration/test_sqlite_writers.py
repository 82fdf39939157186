"""SQLite writers in one process queue on the engine's writer lock: every write
lands, and a transaction that ends in any way gives the lock back."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from slipway.adapters.store import database
from slipway.adapters.store.database import make_engine


@pytest.fixture
def engine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setattr(database, "WRITE_WAIT_S", 2.0)  # a leaked lock fails fast
    engine = make_engine(f"sqlite:///{tmp_path / 'writers.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE counter (n INTEGER NOT NULL)"))
        connection.execute(text("INSERT INTO counter VALUES (0)"))
    return engine


def _count(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT n FROM counter")).scalar_one())


def _add_one(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE counter SET n = n + 1"))


def test_many_threads_writing_at_once_lose_no_write(engine: Engine) -> None:
    def writer() -> None:
        for _ in range(25):
            _add_one(engine)

    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _count(engine) == 8 * 25


def test_a_rolled_back_or_abandoned_transaction_gives_the_lock_back(engine: Engine) -> None:
    with pytest.raises(RuntimeError), engine.begin() as connection:
        connection.execute(text("UPDATE counter SET n = 99"))
        raise RuntimeError("the step failed")
    connection = engine.connect()
    connection.execute(text("UPDATE counter SET n = 98"))
    connection.close()  # handed back to the pool mid-transaction

    other = threading.Thread(target=_add_one, args=(engine,))
    other.start()
    other.join(timeout=10)
    assert _count(engine) == 1


def test_a_thread_with_two_writing_transactions_gets_an_error_not_a_hang(
    engine: Engine,
) -> None:
    first = engine.connect()
    first.execute(text("UPDATE counter SET n = 5"))
    try:
        with pytest.raises(OperationalError, match="locked"), engine.begin() as second:
            second.execute(text("UPDATE counter SET n = 6"))
    finally:
        first.rollback()
        first.close()
    _add_one(engine)
    assert _count(engine) == 1
