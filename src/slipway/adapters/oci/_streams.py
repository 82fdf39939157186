"""Bounds on every transfer, and the bytes of a file read once with its digest.

A socket timeout alone stops only a registry that goes silent: one that sends
a byte just before each timeout would hold a transfer forever. So small bodies
(manifests, tokens, error messages) must arrive whole before a deadline, and
blobs, whose size has no useful bound, must keep a minimum pace.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

__all__ = [
    "CHUNK_BYTES",
    "FileChanged",
    "Pace",
    "ProgressCallback",
    "Step",
    "Timeouts",
    "TooSlow",
    "Transfer",
    "file_chunks",
    "file_digest",
    "read_within",
]

CHUNK_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Timeouts:
    """How long a registry may take; seconds unless said otherwise.

    ``connect``: to open a connection. ``read``: of silence while waiting for
    an answer or for the next bytes of one. ``upload_answer``: of silence after
    a whole blob is sent, while the registry stores it. ``small_body``: for a
    whole manifest, token or error message. ``min_rate`` (bytes per second)
    over each ``rate_window``: the pace a blob upload or download must keep."""

    connect: float = 10.0
    read: float = 60.0
    upload_answer: float = 300.0
    small_body: float = 60.0
    min_rate: int = 16 * 1024
    rate_window: float = 60.0


class Step(StrEnum):
    HASH = "hash"
    UPLOAD = "upload"
    DOWNLOAD = "download"


@dataclass(frozen=True)
class Transfer:
    """Where a transfer is: ``done`` of ``total`` bytes of the file ``name``."""

    step: Step
    name: str
    done: int
    total: int


ProgressCallback = Callable[[Transfer], None]


class FileChanged(Exception):
    """The file read for an upload is not the one hashed before it."""


class TooSlow(Exception):
    """A transfer fell under its minimum pace, or a body missed its deadline."""


class Pace:
    """Counts the bytes of one blob transfer and stops it when fewer than
    ``min_rate`` times ``rate_window`` bytes move in a window of ``rate_window`` seconds."""

    def __init__(self, timeouts: Timeouts, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._min_bytes = timeouts.min_rate * timeouts.rate_window
        self._window = timeouts.rate_window
        self._clock = clock
        self._start = clock()
        self._moved = 0

    def moved(self, count: int) -> None:
        """Note ``count`` more bytes; raise :class:`TooSlow` when the window
        that just closed moved too few."""
        self._moved += count
        now = self._clock()
        if now - self._start < self._window:
            return
        if self._moved < self._min_bytes:
            raise TooSlow(
                f"under {self._min_bytes / self._window:.0f} bytes/s "
                f"for {self._window:g} s ({self._moved} bytes)"
            )
        self._start, self._moved = now, 0


def read_within(chunks: Iterable[bytes], *, limit: int, seconds: float) -> bytes:
    """At most ``limit + 1`` bytes of ``chunks`` (one more than allowed, so a
    caller sees that there was more), all within ``seconds``."""
    deadline = time.monotonic() + seconds
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        parts.append(chunk[: limit + 1 - size])
        size += len(parts[-1])
        if size > limit:
            break
        if time.monotonic() > deadline:
            raise TooSlow(f"not sent whole within {seconds:g} s")
    return b"".join(parts)


def file_digest(path: Path, progress: ProgressCallback | None = None) -> tuple[str, int]:
    """The ``sha256:…`` digest and the size in bytes of the file at ``path``,
    read in chunks (never whole into memory)."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(CHUNK_BYTES), b""):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(Transfer(Step.HASH, path.name, done, total))
    return f"sha256:{digest.hexdigest()}", done


def file_chunks(
    path: Path,
    *,
    digest: str,
    size: int,
    pace: Pace,
    progress: ProgressCallback | None,
) -> Iterator[bytes]:
    """The ``size`` bytes of ``path`` as they are sent, counted by ``pace``;
    :class:`FileChanged` when they are not ``size`` bytes of ``digest``."""
    sent = hashlib.sha256()
    done = 0
    with path.open("rb") as stream:
        while done < size:
            chunk = stream.read(min(CHUNK_BYTES, size - done))
            if not chunk:
                raise FileChanged(f"{path}: the file shrank while it was uploaded")
            sent.update(chunk)
            done += len(chunk)
            yield chunk
            pace.moved(len(chunk))
            if progress is not None:
                progress(Transfer(Step.UPLOAD, path.name, done, size))
        if stream.read(1):
            raise FileChanged(f"{path}: the file grew while it was uploaded")
    if f"sha256:{sent.hexdigest()}" != digest:
        raise FileChanged(f"{path}: the file changed while it was uploaded")
