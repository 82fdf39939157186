"""The image files of appliance versions: measured, checked, and — when they
come from the local image store — kept where Slipway serves them.

A store-backed file is kept by content under ``<data_dir>/marketplace/sha512/``,
hard-linked to the stored image when both are on one file system (no copy),
so removing or replacing the stored image never changes a registered version.

A file registered by URL is downloaded once, streaming, to compute its size
and SHA-512 (nothing is kept); with both given, they are taken on trust and
marked unverified. Downloads never reach loopback, private or link-local
addresses unless the operator allows it (``fetch_private_addresses``): a
user must not make the server probe its own network.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slipway.adapters.addresses import refuse_private_host
from slipway.domain.marketplace import ImageFile
from slipway.errors import Conflict, InputError, SlipwayError
from slipway.imagekit.store import ImageStore, StoredImage, copy_with_sha512, sha512_of
from slipway.services.marketplace import FileSource, PreparedFile

__all__ = ["BootTest", "MarketFiles"]

_SHA512 = re.compile(r"^[0-9a-f]{128}$")
_CHUNK = 1024 * 1024
_FORMATS = ("qcow2", "raw", "vmdk", "ova", "vhd", "vdi", "iso")
_SUFFIX_FORMAT = {".img": "raw", ".qcow2": "qcow2", ".raw": "raw", ".vmdk": "vmdk", ".ova": "ova"}

BootTest = Callable[[str], dict[str, Any]]
"""Boot-tests a stored image now and returns the outcome the store keeps."""


class MarketFiles:
    """Image files under ``root``; stored images come from ``images``.

    ``boot_test`` runs ``image test`` for a stored image that has not passed
    one (None: refuse such an image instead); ``can_boot`` says whether this
    host boots images at all (when it cannot, the version says so)."""

    def __init__(
        self,
        root: Path,
        images: ImageStore,
        *,
        can_boot: Callable[[], str | None],
        boot_test: BootTest | None = None,
        fetch_private: bool = False,
        max_bytes: int = 256 * 1024**3,
        timeout: float = 3600.0,
    ) -> None:
        self.root = root
        self._images = images
        self._can_boot = can_boot
        self._boot_test = boot_test
        self._fetch_private = fetch_private
        self._max_bytes = max_bytes
        self._timeout = timeout

    def prepare(self, source: FileSource) -> PreparedFile:
        if (source.stored is None) == (source.url is None):
            raise InputError("a file is either a stored image or a URL", field="files")
        if source.stored is not None:
            return self._from_store(source.stored)
        assert source.url is not None
        return self._from_url(source)

    def path_of(self, image: ImageFile) -> Path | None:
        if image.stored is None or not _SHA512.match(image.sha512):
            return None
        path = self._blob(image.sha512)
        return path if path.is_file() else None

    def _blob(self, sha512: str) -> Path:
        return self.root / "sha512" / sha512

    # -- from the local image store ------------------------------------------------

    def _from_store(self, name: str) -> PreparedFile:
        entry = self._images.get(name)
        checks = [("image check", _check_outcome(name, entry))]
        checks.append(("image test", self._test_outcome(entry)))
        self._keep(entry)
        os_info = entry.os or {}
        image = ImageFile(
            format=entry.format,
            size=entry.file_size,
            sha512=entry.sha512,
            verified=True,
            stored=name,
            os_name=str(os_info.get("distribution", "")).capitalize(),
            os_version=str(os_info.get("version", "")),
        )
        return PreparedFile(image, tuple(checks))

    def _test_outcome(self, entry: StoredImage) -> str:
        tested = entry.tested
        if tested is not None and tested.get("sha512") != entry.sha512:
            tested = None
        if tested is None:
            why_not = self._can_boot()
            if why_not is not None:
                return f"not run: {why_not}"
            if self._boot_test is None:
                raise Conflict(
                    f"image {entry.name!r} has not been boot-tested",
                    hint=f"slipway image test {entry.name}",
                )
            tested = self._boot_test(entry.name)
        if not tested.get("passed"):
            raise Conflict(
                f"image {entry.name!r} failed its boot test "
                f"({tested.get('failed_check') or 'unknown check'})",
                hint=f"slipway image test {entry.name} shows why",
            )
        seconds = tested.get("seconds_to_ssh")
        return "passed" + (f", SSH after {seconds:.0f} s" if isinstance(seconds, float) else "")

    def _keep(self, entry: StoredImage) -> None:
        """The stored image's bytes under their SHA-512, checked once."""
        target = self._blob(entry.sha512)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        source = self._images.image_path(entry.name)
        fd, tmp_name = tempfile.mkstemp(prefix=".link.", dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            tmp.unlink()
            try:
                os.link(source, tmp)
                sha512 = sha512_of(tmp)
            except OSError:  # another file system: a copy, hashed as it is written
                sha512 = copy_with_sha512(source, tmp)
            if sha512 != entry.sha512:
                raise Conflict(
                    f"image {entry.name!r} no longer matches the SHA-512 the store recorded"
                )
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    # -- from a URL ------------------------------------------------------------------

    def _from_url(self, source: FileSource) -> PreparedFile:
        assert source.url is not None
        url = source.url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(f"{url!r}: only http:// and https:// URLs", field="url")
        fmt = (source.format or _format_from(parts.path)).lower()
        if fmt not in _FORMATS:
            raise InputError(f"format {fmt!r} is not one of {', '.join(_FORMATS)}", field="format")
        if source.sha512 is not None and not _SHA512.match(source.sha512.lower()):
            raise InputError("sha512 must be 128 hexadecimal digits", field="sha512")
        if source.size is not None and not 0 < source.size <= self._max_bytes:
            raise InputError(f"size must be from 1 to {self._max_bytes} bytes", field="size")
        if source.sha512 is not None and source.size is not None:
            image = ImageFile(fmt, source.size, source.sha512.lower(), verified=False, url=url)
            return PreparedFile(image, (("checksum", "taken on trust, not downloaded"),))
        self.refuse_private(parts.hostname)
        size, sha512 = self._measure(url, source.size)
        if source.sha512 is not None and source.sha512.lower() != sha512:
            raise Conflict(
                f"{url}: its SHA-512 is {sha512[:16]}…, not the {source.sha512[:16]}… given"
            )
        if source.size is not None and source.size != size:
            raise Conflict(f"{url}: it has {size} bytes, not the {source.size} given")
        image = ImageFile(fmt, size, sha512, verified=True, url=url)
        return PreparedFile(image, (("checksum", "computed from a download"),))

    def refuse_private(self, host: str) -> None:
        if not self._fetch_private:
            refuse_private_host(host)

    def _measure(self, url: str, declared: int | None) -> tuple[int, str]:
        digest = hashlib.sha512()
        size = 0
        limit = declared if declared is not None else self._max_bytes
        deadline = time.monotonic() + self._timeout
        request = urllib.request.Request(url, headers={"User-Agent": "slipway"})
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                while chunk := response.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise Conflict(f"{url}: more than {limit} bytes")
                    if time.monotonic() > deadline:
                        raise SlipwayError(f"{url}: took over {self._timeout:g} s to download")
                    digest.update(chunk)
        except urllib.error.HTTPError as exc:
            raise InputError(f"{url}: HTTP {exc.code} {exc.reason}", field="url") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise InputError(f"{url}: cannot be fetched: {reason}", field="url") from None
        return size, digest.hexdigest()


def _check_outcome(name: str, entry: StoredImage) -> str:
    findings = (entry.check or {}).get("findings")
    if not isinstance(findings, list):
        raise Conflict(
            f"image {name!r} was stored without an image check", hint=f"slipway image check {name}"
        )
    errors = [f.get("id", "?") for f in findings if f.get("severity") == "error"]
    if errors:
        raise Conflict(
            f"image {name!r} does not pass image check: {', '.join(map(str, errors))}",
            hint=f"slipway image check {name} says why",
        )
    warnings = sum(1 for f in findings if f.get("severity") == "warning")
    return "clean" + (f" ({warnings} warnings)" if warnings else "")


def _format_from(path: str) -> str:
    return _SUFFIX_FORMAT.get(Path(path).suffix.lower(), "qcow2")
