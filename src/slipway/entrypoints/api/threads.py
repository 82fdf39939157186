"""No request blocks the event loop: blocking work runs in worker threads.

Plain ``def`` endpoints and dependencies already run in Starlette's thread
pool. The ``async`` endpoints — those that must await a body or a form — hand
their store calls to :func:`blocking`, and work that costs real CPU time and
memory per call (an Argon2 password hash: 64 MiB; parsing, checking and saving
a definition) to :func:`costly`. Costly work has threads of its own, at most
:data:`COSTLY_THREADS` at a time: fifty log-ins at once queue among themselves
instead of taking every thread of the common pool, so every other request
is still answered.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio.to_thread
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

__all__ = ["COSTLY_THREADS", "blocking", "costly", "install"]

COSTLY_THREADS = max(2, min(8, os.cpu_count() or 2))
"""Password hashes and definition imports running at once, per process."""

P = ParamSpec("P")
T = TypeVar("T")


def install(app: FastAPI) -> None:
    app.state.costly = anyio.CapacityLimiter(COSTLY_THREADS)


async def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the common thread pool."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def costly(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in a thread, at most :data:`COSTLY_THREADS` at once.
    Waiting for a turn takes no thread."""
    limiter: anyio.CapacityLimiter = request.app.state.costly
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)
