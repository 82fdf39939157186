"""The task queue: Huey with SQLite storage on one machine, Redis when scaled
out. One task, ``advance(run_id)``, which re-queues itself with the delay the
runner asks for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.storage import SqliteStorage

from slipway.adapters.private_files import private_file
from slipway.errors import InputError

__all__ = ["HueyQueue", "make_huey"]


class _SqliteStorage(SqliteStorage):  # type: ignore[misc]
    """Huey's SQLite storage with ``synchronous=NORMAL``: in WAL mode a commit
    survives the process dying without an fsync each time (Huey's default
    fsyncs every enqueue, dequeue and revoke check). What a power cut could
    lose is only a hint: the sweeper re-queues every run whose step is overdue."""

    def _create_connection(self) -> Any:
        connection = super()._create_connection()
        connection.execute("pragma synchronous=1")
        return connection


class _SqliteHuey(SqliteHuey):  # type: ignore[misc]
    storage_class = _SqliteStorage


def make_huey(url: str) -> Huey:
    """``sqlite:///path``, ``redis://host:port/db`` or ``memory``."""
    if url.startswith("sqlite:///"):
        path = private_file(Path(url.removeprefix("sqlite:///")))
        return _SqliteHuey("slipway", filename=str(path), timeout=30)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisHuey("slipway", url=url)
    if url == "memory":
        return MemoryHuey("slipway")
    raise InputError(f"queue URL {url!r} is not sqlite:///…, redis://… or memory")


class HueyQueue:
    """Queues ``advance(run_id)``; ``advance`` is the runner's step function."""

    def __init__(self, huey: Huey, advance: Callable[[str], float | None]) -> None:
        self.huey = huey
        self._advance = advance

        def advance_task(run_id: str) -> None:
            delay = self._advance(run_id)
            if delay is not None:
                self.enqueue(run_id, delay)

        self._task: Any = huey.task(name="slipway.advance")(advance_task)

    def enqueue(self, run_id: str, delay: float = 0.0) -> None:
        if delay > 0:
            self._task.schedule(args=(run_id,), delay=delay)
        else:
            self._task(run_id)
