"""Reading a list from a file or an ``http(s)://`` URL, bounded in size and time."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import BinaryIO

from slipway.adapters.imagelists.payload import rejected
from slipway.domain.imagelists import RejectionReason
from slipway.errors import InputError

__all__ = ["read_list_source"]


def read_list_source(source: str, *, max_bytes: int, timeout: float = 30.0) -> bytes:
    """The bytes at ``source``: a path, or an ``http://``/``https://`` URL
    fetched within ``timeout`` seconds. More than
    ``max_bytes`` bytes is refused (``too-large``) without reading the rest;
    a source that cannot be read is an :class:`InputError`."""
    if "://" in source:
        return _fetch(source, max_bytes=max_bytes, timeout=timeout)
    path = Path(source)
    try:
        if not path.is_file():
            raise InputError(f"{source}: no such file", field="FILE")
        if path.stat().st_size > max_bytes:
            raise _too_large(max_bytes)
        with path.open("rb") as stream:
            data = stream.read(max_bytes + 1)
    except OSError as exc:
        raise InputError(f"{source}: {exc.strerror}", field="FILE") from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _fetch(url: str, *, max_bytes: int, timeout: float) -> bytes:
    if not url.lower().startswith(("http://", "https://")):
        raise InputError(f"{url}: only http:// and https:// URLs are fetched", field="URL")
    request = urllib.request.Request(url, headers={"User-Agent": "slipway"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(max_bytes)
            data = _read_within(response, max_bytes + 1, time.monotonic() + timeout, url)
    except urllib.error.HTTPError as exc:
        raise InputError(f"{url}: HTTP {exc.code} {exc.reason}", field="URL") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url}: cannot be fetched: {reason}", field="URL") from None
    if len(data) > max_bytes:
        raise _too_large(max_bytes)
    return data


def _read_within(response: BinaryIO, limit: int, deadline: float, url: str) -> bytes:
    """At most ``limit`` bytes of ``response``, refused once past ``deadline``:
    the socket timeout alone would let a server drip a byte at a time."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = response.read(min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise InputError(f"{url}: took too long to send", field="URL")
    return b"".join(chunks)


def _too_large(max_bytes: int) -> Exception:
    return rejected(RejectionReason.TOO_LARGE, f"the list is over {max_bytes} bytes")
