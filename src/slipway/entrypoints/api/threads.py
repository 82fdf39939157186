"""No request blocks the event loop: blocking work runs in worker threads.

Plain ``def`` endpoints and dependencies already run in Starlette's thread
pool. The ``async`` endpoints — those that must await a body or a form — hand
their store calls to :func:`blocking`, and work that costs real CPU time and
memory per call (an Argon2 password hash: 64 MiB; parsing, checking and saving
a definition) to :func:`costly`; work that may wait minutes on another server
(an appliance file downloaded to hash it) to :func:`download`. Costly work
has threads of its own, at most :data:`COSTLY_THREADS` at a time: fifty
log-ins at once queue among themselves instead of taking every thread of the
common pool, so every other request is still answered.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import ParamSpec, TypeVar

import anyio.to_thread
from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool

from slipway.errors import TooManyAttempts

__all__ = ["COSTLY_THREADS", "DOWNLOAD_THREADS", "blocking", "costly", "download", "install"]

COSTLY_THREADS = max(2, min(8, os.cpu_count() or 2))
"""Password hashes and definition imports running at once, per process."""

P = ParamSpec("P")
T = TypeVar("T")


DOWNLOAD_THREADS = 4
"""Registrations that download a file to hash it, and pushes to a registry, at once,
per process."""


def install(app: FastAPI) -> None:
    app.state.costly = anyio.CapacityLimiter(COSTLY_THREADS)
    app.state.downloads = anyio.CapacityLimiter(DOWNLOAD_THREADS)
    app.state.downloading = set()


async def blocking(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in the common thread pool."""
    return await run_in_threadpool(fn, *args, **kwargs)


async def costly(request: Request, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """``fn(*args, **kwargs)`` in a thread, at most :data:`COSTLY_THREADS` at once.
    Waiting for a turn takes no thread."""
    limiter: anyio.CapacityLimiter = request.app.state.costly
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)


async def download(
    request: Request, user: str, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """``fn(*args, **kwargs)`` — work that may download for minutes — in a
    pool of its own, at most :data:`DOWNLOAD_THREADS` at once and one per
    user: a slow server named by one user never holds the threads log-ins
    and imports run on, nor every download slot."""
    busy: set[str] = request.app.state.downloading
    if user in busy:
        raise TooManyAttempts(
            f"{user} already has a registration downloading; one at a time", retry_after=30
        )
    busy.add(user)
    try:
        limiter: anyio.CapacityLimiter = request.app.state.downloads
        return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs), limiter=limiter)
    finally:
        busy.discard(user)
