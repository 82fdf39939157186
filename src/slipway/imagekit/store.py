"""The local image store (DESIGN.md §7): a folder of qcow2 files, each with a
JSON metadata file beside it. An entry's name is its id, and the local
cloud's native image id.

Layout under ``<data_dir>/images/``::

    <name>.qcow2      the image (compressed qcow2)
    <name>.json       its metadata (format, sizes, sha512, OS, check result)

Writes are atomic: the image is written under a temporary name and renamed,
then the metadata likewise; an entry exists only once its metadata does, so
an interrupted import never shows. Removal deletes the metadata first.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slipway.domain.clouds import LOCAL_IMAGE_ID
from slipway.errors import Conflict, InputError, NotFound
from slipway.imagekit.convert import open_image, qemu_convert
from slipway.imagekit.recipe import DiskFormat

__all__ = [
    "Checker",
    "ImageStore",
    "StoredImage",
    "UsersOf",
    "copy_with_sha512",
    "known_sha512",
    "remember_sha512",
    "sha512_of",
]

_NAME = LOCAL_IMAGE_ID  # an entry's name is the local cloud's native image id
_CHUNK = 4 * 1024 * 1024

UsersOf = Callable[[str], Sequence[str]]
"""Given an image name, the ids of the runs that use it (none by default)."""
Checker = Callable[[Path], Any]
"""Checks an image file; its report is stored as JSON (dataclass or ``to_dict()``)."""


def _no_users(_name: str) -> Sequence[str]:
    return ()


@dataclass(frozen=True)
class StoredImage:
    """One entry of the store. Sizes are bytes; ``os`` e.g. {"distribution": "debian", …}."""

    name: str
    format: str
    source_format: str
    virtual_size: int
    file_size: int
    sha512: str
    imported_at: str
    os: dict[str, str] | None = None
    check: dict[str, Any] | None = None
    tested: dict[str, Any] | None = None  # the last `image test` of these bytes
    properties: dict[str, str] | None = None  # set by whoever stored it (e.g. a sync)
    hidden: bool = False  # deprecated: kept for the runs that use it, offered to none

    @property
    def id(self) -> str:
        """The native image id on the local cloud."""
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **dataclasses.asdict(self)}


def copy_with_sha512(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` and return its hex SHA-512, reading it once."""
    digest = hashlib.sha512()
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def sha512_of(path: Path) -> str:
    """The hex SHA-512 of the file at ``path``, read once in chunks."""
    digest = hashlib.sha512()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


LEFTOVER_AGE_S = 24 * 3600
"""A temporary file of the store this old belongs to an import that died."""
_KNOWN_SHA512 = "user.slipway.sha512"
"""An extended attribute carrying a file's SHA-512 with the size and
modification time it was computed for: whoever hashed the bytes as they
arrived (a sync's download) spares the store a second read."""


def remember_sha512(path: Path, sha512: str) -> None:
    """Keep ``sha512`` with the file (nothing when the file system has no
    user attributes: the store then reads the file once more)."""
    stat = path.stat()
    with contextlib.suppress(OSError):
        os.setxattr(path, _KNOWN_SHA512, f"{sha512} {stat.st_size} {stat.st_mtime_ns}".encode())


def known_sha512(path: Path) -> str | None:
    """The SHA-512 kept with the file, if the file is still as it was then."""
    try:
        sha512, size, mtime = os.getxattr(path, _KNOWN_SHA512).decode().split()
    except (OSError, ValueError):
        return None
    stat = path.stat()
    if (int(size), int(mtime)) != (stat.st_size, stat.st_mtime_ns) or len(sha512) != 128:
        return None
    return sha512


def _hard_link(source: Path, target: Path) -> bool:
    """Make ``target`` (an empty temporary file) a hard link to ``source``;
    ``False`` when the file system cannot (another device, no links)."""
    target.unlink()
    try:
        os.link(source, target)
    except OSError:
        target.touch()  # the temporary name stays ours until it is replaced
        return False
    return True


def _report_dict(report: Any) -> dict[str, Any]:
    if report is None or isinstance(report, dict):
        return report or {}
    if hasattr(report, "to_dict"):
        return dict(report.to_dict())
    if dataclasses.is_dataclass(report) and not isinstance(report, type):
        return json.loads(json.dumps(dataclasses.asdict(report), default=str))  # type: ignore[no-any-return]
    return {"result": str(report)}


class ImageStore:
    """The folder of stored images. ``users_of`` tells which runs use an image."""

    def __init__(
        self, root: Path, *, users_of: UsersOf = _no_users, checker: Checker | None = None
    ) -> None:
        self.root = root
        self.users_of = users_of
        self.checker = checker

    def image_path(self, name: str) -> Path:
        return self.root / f"{name}.qcow2"

    def _meta_path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def list(self) -> list[StoredImage]:
        """Every complete entry, by name."""
        if not self.root.is_dir():
            return []
        return [self._read(p) for p in sorted(self.root.glob("*.json"))]

    def get(self, name: str) -> StoredImage:
        meta = self._meta_path(name)
        if not _NAME.match(name) or not meta.is_file():
            raise NotFound(
                f"no image {name!r} in the local image store",
                hint="slipway image list shows what is there",
            )
        return self._read(meta)

    def _read(self, meta: Path) -> StoredImage:
        data = json.loads(meta.read_text(encoding="utf-8"))
        data.pop("id", None)
        return StoredImage(**data)

    def ensure_free(self, name: str) -> None:
        """Raise InputError for an invalid name, Conflict for one already stored."""
        if not _NAME.match(name):
            raise InputError(
                f"invalid image name {name!r}",
                hint="lower-case letters, digits, '.', '_' and '-', at most 63 characters",
            )

    def import_file(
        self,
        source: Path,
        name: str,
        *,
        os_info: Mapping[str, str] | None = None,
        properties: Mapping[str, str] | None = None,
        link: bool = False,
    ) -> StoredImage:
        """Store ``source`` (qcow2, raw, vmdk or OVA) as qcow2 under ``name``,
        with ``properties`` in its metadata from the start.

        With ``link``, a qcow2 ``source`` on the store's file system becomes
        the entry by a hard link rather than a copy (read once, for its
        SHA-512; nothing written): the caller hands the file over and must
        not write to it afterwards. Elsewhere it is copied."""
        self.ensure_free(name)
        image = open_image(source)  # refuses backing files: stored images stand alone
        self.root.mkdir(parents=True, exist_ok=True)
        self.sweep()
        target = self.image_path(name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.root)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            if image.container is DiskFormat.QCOW2:
                if link and _hard_link(source, tmp):
                    sha512 = known_sha512(tmp) or sha512_of(tmp)
                else:
                    sha512 = copy_with_sha512(source, tmp)
            else:
                qemu_convert(image, tmp, DiskFormat.QCOW2)
                sha512 = sha512_of(tmp)
            report = self.checker(tmp) if self.checker else None
            entry = StoredImage(
                name=name,
                format=DiskFormat.QCOW2.value,
                source_format=image.container.value,
                virtual_size=image.virtual_size,
                file_size=tmp.stat().st_size,
                sha512=sha512,
                imported_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                os=dict(os_info) if os_info else None,
                check=_report_dict(report) if self.checker else None,
                properties=dict(properties) if properties else None,
            )
            with self._locked():
                if self._meta_path(name).exists():
                    raise Conflict(f"an image named {name!r} is already stored")
                tmp.chmod(0o644)
                tmp.replace(target)
                self._write_meta(entry)
        finally:
            tmp.unlink(missing_ok=True)
        return entry

    def sweep(self, older_than_s: float = LEFTOVER_AGE_S) -> tuple[Path, ...]:
        """Delete the temporary files of imports that died (a process killed
        between writing and renaming): never visible, but holding disk space.
        Their inode's change time says when they were made (a hard link's
        too), so a running import's file is never taken. Returns what went."""
        now = time.time()
        gone: list[Path] = []
        for leftover in self.root.glob(".*.tmp"):
            with contextlib.suppress(FileNotFoundError):
                if now - leftover.lstat().st_ctime > older_than_s:
                    leftover.unlink()
                    gone.append(leftover)
        return tuple(gone)

    def _write_meta(self, entry: StoredImage) -> None:
        meta = self._meta_path(entry.name)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{meta.name}.", suffix=".tmp", dir=self.root)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(entry.to_dict(), fh, indent=2, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp_name).chmod(0o644)
        Path(tmp_name).replace(meta)

    def record_test(self, name: str, outcome: Mapping[str, Any]) -> StoredImage:
        """Keep the outcome of an ``image test`` of the entry (with the
        SHA-512 it was run on, so a later entry of the same name never
        inherits it)."""
        with self._locked():
            entry = self.get(name)
            updated = dataclasses.replace(entry, tested={**outcome, "sha512": entry.sha512})
            self._write_meta(updated)
        return updated

    def set_hidden(self, name: str, hidden: bool = True) -> StoredImage:
        """Hide (deprecate) the entry, or show it again."""
        with self._locked():
            entry = self.get(name)
            updated = dataclasses.replace(entry, hidden=hidden)
            if updated != entry:
                self._write_meta(updated)
        return updated

    def remove(self, name: str) -> StoredImage:
        """Delete an entry; refused (Conflict) while a run uses it."""
        with self._locked():
            entry = self.get(name)
            users = list(self.users_of(name))
            if users:
                raise Conflict(
                    f"image {name!r} is used by {len(users)} run(s): {', '.join(users)}",
                    hint="terminate those runs first",
                )
            self._meta_path(name).unlink()
            self.image_path(name).unlink(missing_ok=True)
        return entry
