"""What a sync reads: image lists (fetched with a conditional GET and
verified) or OCI repositories (``sync_oci``), and image files (downloaded
once into a cache, resumed after an interruption, hashed as they stream,
converted to qcow2 when they are not) from a URL or from a registry.

Both refuse the server's own network unless the operator allows it
(``fetch_private_addresses``), bound every transfer in size and pace, and
never follow a redirect to a host they would refuse.

The cache, under ``<data_dir>/sync-cache/``::

    <key>.part      a download under way (resumed from its length)
    <key>           a finished download: size and SHA-512 (or OCI digest) are the list's
    <key>.md5       its MD5, for a cloud that checks one (Exoscale)
    <key>.qcow2     its conversion, when the list's format is not qcow2

``<key>`` is the file's SHA-512 in hex, or ``sha256-<hex>`` for a file of an
OCI repository (whose SHA-512 is known once it is downloaded).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import queue
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import httpx2

from slipway.adapters.addresses import refuse_private_host
from slipway.adapters.oci._streams import Pace, Timeouts, TooSlow, read_within
from slipway.domain.imagelists import ListedImage, PreviousAcceptance
from slipway.domain.machines import ImageStream
from slipway.domain.sync import Subscription, is_oci_source
from slipway.errors import ImageFileError, InputError
from slipway.imagekit.store import known_sha512, remember_sha512
from slipway.services.sync import AcceptedList, CachedImage, FetchedList, ListReader

__all__ = ["HttpListReader", "ImageCache", "SourceReader"]

_CHUNK = 1024 * 1024
_MAX_REDIRECTS = 5


class _Http:
    """GETs that check every host they are sent to, redirects included."""

    def __init__(self, *, fetch_private: bool, timeouts: Timeouts) -> None:
        self.fetch_private = fetch_private
        self.timeouts = timeouts

    def _client(self) -> httpx2.Client:
        t = self.timeouts
        return httpx2.Client(
            timeout=httpx2.Timeout(t.read, connect=t.connect),
            follow_redirects=False,
            # Identity encoding: the bytes hashed are the file's, as the list sums them.
            headers={"User-Agent": "slipway", "Accept-Encoding": "identity"},
        )

    def check(self, url: str, field: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"{url}: only http:// and https:// URLs are fetched", field=field)
        if not self.fetch_private:
            refuse_private_host(parts.hostname, field=field)

    @contextmanager
    def get(self, url: str, headers: dict[str, str], field: str) -> Iterator[httpx2.Response]:
        """A streamed answer to GET ``url``, following at most five redirects,
        each to a host that passes the address check."""
        with self._client() as client:
            for _ in range(_MAX_REDIRECTS + 1):
                self.check(url, field)
                try:
                    with client.stream("GET", url, headers=headers) as response:
                        if response.is_redirect and "location" in response.headers:
                            url = urllib.parse.urljoin(url, response.headers["location"])
                            continue
                        yield response
                        return
                except httpx2.HTTPError as exc:
                    raise InputError(f"{url}: cannot be fetched: {exc}", field=field) from None
            raise InputError(f"{url}: more than {_MAX_REDIRECTS} redirects", field=field)


class HttpListReader:
    """Lists over HTTP(S), verified with Slipway's verifier against the
    subscription's CA directory and trusted endorser."""

    def __init__(self, *, fetch_private: bool, timeouts: Timeouts | None = None) -> None:
        self._http = _Http(fetch_private=fetch_private, timeouts=timeouts or Timeouts())

    def check_source(self, source: str) -> None:
        if not source.lower().startswith(("http://", "https://")):
            raise InputError(
                f"source {source!r} is not an http:// or https:// URL, nor oci://",
                field="source",
                hint="the URL of a VO's image list (https://…/vo/VO/image.list), "
                "or an OCI repository (oci://HOST/REPOSITORY[:TAG])",
            )
        self._http.check(source, "source")

    def fetch(self, source: str, etag: str | None, last_modified: str | None) -> FetchedList:
        from slipway.adapters.imagelists import MAX_MESSAGE_BYTES

        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        with self._http.get(source, headers, "source") as response:
            if response.status_code == 304:
                return FetchedList(None, etag, last_modified)
            if response.status_code != 200:
                raise InputError(
                    f"{source}: HTTP {response.status_code} {response.reason_phrase}",
                    field="source",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > MAX_MESSAGE_BYTES:
                raise InputError(f"{source}: the list is over {MAX_MESSAGE_BYTES} bytes")
            try:
                body = read_within(
                    response.iter_bytes(),
                    limit=MAX_MESSAGE_BYTES,
                    seconds=self._http.timeouts.small_body,
                )
            except (TooSlow, httpx2.HTTPError) as exc:
                raise InputError(f"{source}: {exc}", field="source") from None
            if len(body) > MAX_MESSAGE_BYTES:
                raise InputError(f"{source}: the list is over {MAX_MESSAGE_BYTES} bytes")
            return FetchedList(
                body, response.headers.get("etag"), response.headers.get("last-modified")
            )

    def verify(
        self,
        message: bytes,
        subscription: Subscription,
        previous: PreviousAcceptance | None,
        now: datetime,
    ) -> AcceptedList:
        from slipway.adapters.imagelists import (
            TrustPolicy,
            load_ca_dir,
            parse_endorser_name,
            verify_image_list,
        )

        ca = subscription.endorser_ca
        policy = TrustPolicy(
            anchors=load_ca_dir(Path(subscription.ca_dir)),
            endorser_dn=parse_endorser_name(subscription.endorser_dn, field="endorser_dn"),
            endorser_ca=parse_endorser_name(ca, field="endorser_ca") if ca else None,
        )
        verified = verify_image_list(message, policy, now=now, previous=previous)
        return AcceptedList(verified.image_list, verified.dropped, verified.digest)


class SourceReader:
    """Image lists over HTTP(S), OCI repositories at ``oci://``."""

    def __init__(self, lists: ListReader, repositories: ListReader) -> None:
        self.lists = lists
        self.repositories = repositories

    def _for(self, source: str) -> ListReader:
        return self.repositories if is_oci_source(source) else self.lists

    def check_source(self, source: str) -> None:
        self._for(source).check_source(source)

    def fetch(self, source: str, etag: str | None, last_modified: str | None) -> FetchedList:
        return self._for(source).fetch(source, etag, last_modified)

    def verify(
        self,
        message: bytes,
        subscription: Subscription,
        previous: PreviousAcceptance | None,
        now: datetime,
    ) -> AcceptedList:
        return self._for(subscription.source).verify(message, subscription, previous, now)


class ImageCache:
    """Image files, downloaded once: resumed where a killed download
    stopped, hashed (SHA-512, the OCI digest and MD5 as needed) while they
    stream."""

    def __init__(
        self, root: Path, *, fetch_private: bool, timeouts: Timeouts | None = None
    ) -> None:
        self.root = root
        self._http = _Http(fetch_private=fetch_private, timeouts=timeouts or Timeouts())

    @staticmethod
    def _key(image: ListedImage) -> str:
        """What the file is cached by: its SHA-512, or its OCI digest."""
        if image.sha512:
            if len(image.sha512) == 128 and all(c in "0123456789abcdef" for c in image.sha512):
                return image.sha512
            raise InputError(f"sl:checksum:sha512 {image.sha512[:20]!r}… is not 128 hex digits")
        digest = (image.digest or "").removeprefix("sha256:")
        if len(digest) == 64 and all(c in "0123456789abcdef" for c in digest):
            return f"sha256-{digest}"
        raise InputError(f"{image.identifier}: neither a SHA-512 nor a sha256 digest to check")

    def _paths(self, key: str) -> tuple[Path, Path, Path]:
        base = self.root / key
        return base, base.with_name(f"{key}.part"), base.with_name(f"{key}.md5")

    @contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """One download of a file at a time, across processes."""
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / f"{key}.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def fetch(
        self,
        image: ListedImage,
        progress: Callable[[int], None],
        *,
        md5: bool = False,
        arrival: _Arrival | None = None,
    ) -> CachedImage:
        key = self._key(image)
        final, part, md5_file = self._paths(key)
        with self._locked(key):
            if final.is_file() and (md5_file.is_file() or not md5):
                if arrival is not None:
                    arrival.started(final, final, image.size)
                known = md5_file.read_text().strip() if md5_file.is_file() else None
                return CachedImage(final, known, 0, image.sha512 or _sha512_of(final))
            digests = _Digests(md5=md5, sha256=image.digest is not None)
            offset = _rehash(part, image.size, digests)
            if arrival is not None:
                part.touch()
                arrival.started(part, final, offset)
            fetched, digests = self._download(image, part, offset, digests, progress, arrival)
            sha512 = digests.sha512.hexdigest()
            wrong = _mismatch(image, digests)
            if wrong is not None:
                part.unlink(missing_ok=True)
                raise ImageFileError(f"{image.uri}: {wrong}; the download was discarded")
            remember_sha512(part, sha512)
            checksum = digests.md5.hexdigest() if digests.md5 is not None else None
            if checksum is not None:
                md5_file.write_text(checksum + "\n")
            part.replace(final)
        return CachedImage(final, checksum, fetched, sha512)

    def stream(
        self, image: ListedImage, progress: Callable[[int], None]
    ) -> tuple[ImageStream, Future[CachedImage]]:
        """Download ``image`` as :meth:`fetch` does, on a thread of its own,
        and give a stream of the file for an upload running meanwhile. The
        stream ends only once the download matched the list and the file
        proved a qcow2 that reads no other file; the future is the download."""
        key = self._key(image)
        arrival = _Arrival(image.size)
        final = self._paths(key)[0]

        future: Future[CachedImage] = Future()

        def download() -> None:
            try:
                cached = self.fetch(image, progress, arrival=arrival)
                if self.qcow2(cached, image) != cached.path:
                    raise ImageFileError(f"{image.uri}: the list says qcow2, the file is not one")
            except BaseException as exc:
                arrival.failed(exc)
                future.set_exception(exc)
                return
            arrival.finished()
            future.set_result(cached)

        # A daemon: an interrupted sync (Ctrl-C) does not wait for the download
        # to end; the next one resumes it from the cache.
        threading.Thread(target=download, name="sync-download", daemon=True).start()
        return ImageStream(arrival.open, image.size, image.sha512, final), future

    @contextmanager
    def _open(self, image: ListedImage, headers: dict[str, str]) -> Iterator[httpx2.Response]:
        """The answer to a GET of the image's file: from its URL, or the
        blob of an OCI artifact (``uri`` its pinned reference)."""
        if not is_oci_source(image.uri):
            with self._http.get(image.uri, headers, "hv:uri") as response:
                yield response
            return
        from slipway.adapters.oci import DISK_MEDIA_TYPE, parse_reference
        from slipway.adapters.oci._session import RegistrySession
        from slipway.adapters.oci.manifest import Descriptor
        from slipway.adapters.oci.pull import blob_response

        reference = parse_reference(image.uri)
        self._http.check(f"https://{reference.host}/", "hv:uri")
        layer = Descriptor(DISK_MEDIA_TYPE, image.digest or "", image.size)
        with RegistrySession(
            reference,
            actions=("pull",),
            credentials=None,
            plain_http=None,
            timeouts=self._http.timeouts,
        ) as registry:
            response = blob_response(
                registry,
                layer,
                f"get blob {layer.digest}",
                headers=headers,
                statuses=(200, 206),
                check_url=lambda url: self._http.check(url, "hv:uri"),
            )
            try:
                yield response
            finally:
                response.close()

    def _download(
        self,
        image: ListedImage,
        part: Path,
        offset: int,
        digests: _Digests,
        progress: Callable[[int], None],
        arrival: _Arrival | None = None,
    ) -> tuple[int, _Digests]:
        """Append the rest of the file to ``part``; returns the bytes fetched
        and the digests of the whole file. ``arrival`` hears of every byte
        written."""
        if offset == image.size:
            return 0, digests
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        fetched = 0
        with self._open(image, headers) as response:
            if response.status_code == 200 and offset:
                offset = 0  # the server ignores ranges: start again
                digests = digests.fresh()
                if arrival is not None:
                    arrival.restarted()
            elif response.status_code not in (200, 206):
                raise InputError(
                    f"{image.uri}: HTTP {response.status_code} {response.reason_phrase}",
                    field="hv:uri",
                )
            pace = Pace(self._http.timeouts)
            done = offset
            with part.open("r+b" if offset else "wb") as out:
                out.seek(offset)
                out.truncate()
                sink = _Sink(out, digests, arrival)
                try:
                    for chunk in _batched(response.iter_raw()):
                        done += len(chunk)
                        if done > image.size:
                            raise ImageFileError(
                                f"{image.uri}: more than the {image.size} bytes the list says"
                            )
                        sink.put(chunk)
                        fetched += len(chunk)
                        pace.moved(len(chunk))
                        progress(done)
                except (TooSlow, httpx2.HTTPError) as exc:
                    raise InputError(
                        f"{image.uri}: the download stopped at {done} of {image.size} bytes "
                        f"({exc}); the next sync resumes it",
                        field="hv:uri",
                    ) from None
                finally:
                    sink.close()  # what arrived is written and hashed, whatever happened
                    out.flush()
                    os.fsync(out.fileno())
            if done != image.size:
                if done > image.size:
                    part.unlink(missing_ok=True)
                raise ImageFileError(
                    f"{image.uri}: {done} bytes, the list says {image.size}"
                    + ("; the next sync resumes it" if done < image.size else "")
                )
        return fetched, digests

    def qcow2(self, cached: CachedImage, image: ListedImage) -> Path:
        from slipway.imagekit.convert import open_image, qemu_convert
        from slipway.imagekit.recipe import DiskFormat

        opened = open_image(cached.path)  # refuses backing files: nothing else is read
        if opened.container is DiskFormat.QCOW2:
            return cached.path
        target = cached.path.with_name(f"{cached.path.name}.qcow2")
        if target.is_file():
            return target
        tmp = target.with_name(f"{target.name}.tmp")
        try:
            qemu_convert(opened, tmp, DiskFormat.QCOW2)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        return target

    def forget(self, image: ListedImage) -> None:
        try:
            key = self._key(image)
        except InputError:
            return
        paths = self._paths(key)
        with self._locked(key):
            for path in (*paths, paths[0].with_name(f"{key}.qcow2")):
                path.unlink(missing_ok=True)
        (self.root / f"{key}.lock").unlink(missing_ok=True)


def _mismatch(image: ListedImage, digests: _Digests) -> str | None:
    """How the downloaded file differs from what the list says, if it does."""
    if image.digest is not None and digests.sha256 is not None:
        received = f"sha256:{digests.sha256.hexdigest()}"
        if received != image.digest:
            return f"its digest is {received[:23]}…, the manifest says {image.digest[:23]}…"
    sha512 = digests.sha512.hexdigest()
    if image.sha512 and sha512 != image.sha512:
        return f"its SHA-512 is {sha512[:16]}…, the list says {image.sha512[:16]}…"
    return None


def _sha512_of(path: Path) -> str:
    """The SHA-512 kept with a cached file, or read from it (a file system without xattrs)."""
    known = known_sha512(path)
    if known is not None:
        return known
    digest = hashlib.sha512()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _batched(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The transport's reads (64 KiB) joined into runs of about a MiB: one
    hand-over to the writer and the hasher per MiB rather than per read."""
    held: list[bytes] = []
    size = 0
    for chunk in chunks:
        held.append(chunk)
        size += len(chunk)
        if size >= _CHUNK:
            yield held[0] if len(held) == 1 else b"".join(held)
            held, size = [], 0
    if held:
        yield b"".join(held)


class _Digests:
    """The SHA-512 of a download, its sha256 when it is an OCI blob, and
    its MD5 when the cloud checks one."""

    def __init__(self, *, md5: bool, sha256: bool = False) -> None:
        self.sha512 = hashlib.sha512()
        self.sha256 = hashlib.sha256() if sha256 else None
        self.md5 = hashlib.md5(usedforsecurity=False) if md5 else None

    def fresh(self) -> _Digests:
        return _Digests(md5=self.md5 is not None, sha256=self.sha256 is not None)

    def update(self, chunk: bytes) -> None:
        self.sha512.update(chunk)
        if self.sha256 is not None:
            self.sha256.update(chunk)
        if self.md5 is not None:
            self.md5.update(chunk)


class _Writer:
    """Writes chunks to the file and, every ``_FLUSH_BYTES``, has the kernel
    put them on disk: the flush before the download counts as done then has
    little left to do, and it happens while the hasher still works."""

    _FLUSH_BYTES = 64 * 1024 * 1024

    def __init__(self, out: BinaryIO, arrival: _Arrival | None = None) -> None:
        self._out = out
        self._pending = 0
        self._arrival = arrival

    def __call__(self, chunk: bytes) -> None:
        self._out.write(chunk)
        self._pending += len(chunk)
        if self._arrival is not None:
            self._out.flush()  # readable through another descriptor from now on
            self._arrival.wrote(len(chunk))
        if self._pending >= self._FLUSH_BYTES:
            self._out.flush()
            os.fdatasync(self._out.fileno())
            self._pending = 0


class _Sink:
    """Where downloaded bytes go, the file and the digests each on a thread
    of its own: receiving, hashing and writing overlap (hashlib and file
    writes let go of the GIL), so a download costs about what hashing alone
    does. Bounded queues keep at most a few MiB in memory."""

    _DEPTH = 32  # chunks of about a MiB

    def __init__(self, out: BinaryIO, digests: _Digests, arrival: _Arrival | None = None) -> None:
        self._queues: list[queue.Queue[bytes | None]] = []
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        for work in (_Writer(out, arrival), digests.update):
            q: queue.Queue[bytes | None] = queue.Queue(self._DEPTH)
            thread = threading.Thread(target=self._drain, args=(q, work), daemon=True)
            thread.start()
            self._queues.append(q)
            self._threads.append(thread)

    def _drain(self, q: queue.Queue[bytes | None], work: Callable[[bytes], object]) -> None:
        while (chunk := q.get()) is not None:
            if not self._errors:
                try:
                    work(chunk)
                except BaseException as exc:  # a full disk: raised by put() or close()
                    self._errors.append(exc)

    def put(self, chunk: bytes) -> None:
        if self._errors:
            raise self._errors[0]
        for q in self._queues:
            q.put(chunk)

    def close(self) -> None:
        for q in self._queues:
            q.put(None)
        for thread in self._threads:
            thread.join()
        if self._errors:
            raise self._errors[0]


class _Arrival:
    """A download as an upload beside it sees it: how much of the file is
    written, and whether it is complete and checked. Readers get every byte
    written but the last until :meth:`finished`, and an error after
    :meth:`failed`, so an upload can end only on a file that passed."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._changed = threading.Condition()
        self._paths: tuple[Path, Path] | None = None  # where it is written, where it ends
        self._written = 0
        self._done = False
        self._error: BaseException | None = None

    def started(self, part: Path, final: Path, offset: int) -> None:
        with self._changed:
            self._paths, self._written = (part, final), offset
            self._changed.notify_all()

    def wrote(self, count: int) -> None:
        with self._changed:
            self._written += count
            self._changed.notify_all()

    def restarted(self) -> None:
        """The server ignored the range: the file is written again from its start."""
        with self._changed:
            self._written = 0

    def finished(self) -> None:
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def failed(self, error: BaseException) -> None:
        with self._changed:
            self._error = error
            self._changed.notify_all()

    def open(self) -> _ArrivingReader:
        return _ArrivingReader(self)

    def wait(self, position: int) -> tuple[Path, Path, int]:
        """Until bytes past ``position`` may be read (or the end is there):
        the file's paths and how many bytes may be read from ``position``."""
        with self._changed:
            while True:
                if self._error is not None:
                    raise ImageFileError(f"the download failed: {self._error}")
                readable = self._size if self._done else min(self._written, self._size - 1)
                if self._paths is not None and (readable > position or self._done):
                    return (*self._paths, max(readable - position, 0))
                self._changed.wait(1.0)


class _ArrivingReader:
    """One reader of an :class:`_Arrival`, from the file's start."""

    def __init__(self, arrival: _Arrival) -> None:
        self._arrival = arrival
        self._position = 0
        self._fd: int | None = None

    def read(self, size: int = -1, /) -> bytes:
        part, final, readable = self._arrival.wait(self._position)
        if readable == 0:
            return b""
        if self._fd is None:
            try:
                self._fd = os.open(part, os.O_RDONLY)
            except FileNotFoundError:  # renamed as it was finished
                self._fd = os.open(final, os.O_RDONLY)
        want = readable if size is None or size < 0 else min(size, readable)
        chunk = os.pread(self._fd, want, self._position)
        self._position += len(chunk)
        return chunk

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _rehash(part: Path, size: int, digests: _Digests) -> int:
    """Feed what an earlier download left into the digests; its length, or 0
    when there is nothing usable (too long: start again)."""
    try:
        length = part.stat().st_size
    except FileNotFoundError:
        return 0
    if length > size:
        part.unlink()
        return 0
    with part.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digests.update(chunk)
    return length
