"""Pulling a disk image artifact, every byte checked before it is used.

The manifest is read whole within a bound and its sha256 compared with the
digest the reference pins (else with the one the registry announces); each
layer streams into a temporary file in the target folder while its sha256 and
byte count are taken, the transfer stopping at the first byte past the size
the manifest declares. Files get their names only once every layer has
matched: a failed pull leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import httpx2

from slipway.adapters.oci._auth import RegistryCredentials
from slipway.adapters.oci._session import MAX_REDIRECTS, RegistrySession
from slipway.adapters.oci._streams import Pace, ProgressCallback, Step, Timeouts
from slipway.adapters.oci._streams import Transfer as TransferState
from slipway.adapters.oci.annotations import TITLE, DiskImageFields, disk_image_fields
from slipway.adapters.oci.files import is_plain_file_name, name_for_digest
from slipway.adapters.oci.manifest import (
    MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
    Descriptor,
    DiskManifest,
    parse_manifest,
)
from slipway.adapters.oci.reference import OciReference, parse_reference
from slipway.errors import ArtifactRejected, Conflict, InputError

__all__ = ["PulledArtifact", "PulledFile", "blob_response", "fetch_manifest", "pull_disk_image"]

PART_PREFIX = ".slipway-pull-"


@dataclass(frozen=True)
class PulledFile:
    """One layer, now a file: its path, ``sha256:`` digest, size in bytes
    and the layer's annotations."""

    path: Path
    digest: str
    size: int
    annotations: Mapping[str, str]


@dataclass(frozen=True)
class PulledArtifact:
    """What a pull wrote. ``reference`` is pinned to ``manifest_digest``;
    ``annotations`` are the manifest's (each file has its layer's)."""

    reference: OciReference
    manifest_digest: str
    files: tuple[PulledFile, ...]
    annotations: Mapping[str, str]
    artifact_type: str | None

    def fields(self) -> DiskImageFields:
        """What the first layer's and the manifest's annotations say about
        the disk image (OS, version, architecture, EGI tag …)."""
        return disk_image_fields(self.files[0].annotations, self.annotations)


def pull_disk_image(
    reference: OciReference | str,
    to_dir: Path,
    *,
    progress: ProgressCallback | None = None,
    credentials: RegistryCredentials | None = None,
    plain_http: bool | None = None,
    timeouts: Timeouts = Timeouts(),
    overwrite: bool = False,
) -> PulledArtifact:
    """Fetch the artifact ``reference`` names into ``to_dir`` (made if
    missing), one file per layer, named by the layer's title or, without
    one, ``sha256-<hex>``. Files are private to their owner (mode 0600).

    Raises :class:`ArtifactRejected` when anything fails a check (the
    message names the expected and the received digest or size),
    :class:`Conflict` when a file of that name exists and ``overwrite`` is
    false, ``NotFound`` or :class:`RegistryError` when the registry says no."""
    source = parse_reference(reference) if isinstance(reference, str) else reference
    _prepare_folder(to_dir)
    with RegistrySession(
        source,
        actions=("pull",),
        credentials=credentials,
        plain_http=plain_http,
        timeouts=timeouts,
    ) as registry:
        raw, manifest_digest = fetch_manifest(registry)
        manifest = parse_manifest(raw, registry=registry.host)
        targets = _targets(registry, manifest, to_dir, overwrite=overwrite)
        try:
            with _parts(to_dir) as parts:
                for layer, target in zip(manifest.layers, targets, strict=True):
                    _download(registry, layer, parts.new(), target, progress)
                _publish(parts, targets, overwrite=overwrite)
        except OSError as exc:
            where = exc.filename2 or to_dir  # a rename names its target second
            raise InputError(f"{where}: cannot be written: {exc.strerror}", field="DIR") from None
    files = tuple(
        PulledFile(target, layer.digest, layer.size, layer.annotations)
        for layer, target in zip(manifest.layers, targets, strict=True)
    )
    return PulledArtifact(
        reference=source.with_digest(manifest_digest),
        manifest_digest=manifest_digest,
        files=files,
        annotations=manifest.annotations,
        artifact_type=manifest.artifact_type,
    )


def _prepare_folder(to_dir: Path) -> None:
    try:
        to_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{to_dir}: {exc.strerror}", field="DIR") from None
    if not to_dir.is_dir():
        raise InputError(f"{to_dir}: not a folder", field="DIR")


def fetch_manifest(registry: RegistrySession, key: str | None = None) -> tuple[bytes, str]:
    """The manifest's exact bytes and their digest, which must be the one
    the reference pins, else the one the registry announces, if it does.
    ``key``: a tag of the repository other than the reference's."""
    pinned = registry.reference.digest if key is None else None
    key = key or registry.reference.manifest_key
    action = f"get the manifest of {key}"
    response = registry.send(
        "GET",
        registry.url(f"manifests/{key}"),
        action=action,
        headers={"Accept": MANIFEST_MEDIA_TYPE},
    )
    if response.status_code != 200:
        raise registry.refuse(response, action)
    announced = response.headers.get("Docker-Content-Digest")
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > MAX_MANIFEST_BYTES:
        response.close()
        raise _too_large_manifest(registry)
    raw = registry.read_small(response, limit=MAX_MANIFEST_BYTES, action=action)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _too_large_manifest(registry)
    received = f"sha256:{hashlib.sha256(raw).hexdigest()}"
    expected = pinned or announced
    if expected is not None and received != expected:
        said = "the reference pins" if pinned else "the registry announced"
        raise ArtifactRejected(
            "digest-mismatch",
            f"rejected (digest-mismatch): manifest {key}: {said} {expected[:80]}, "
            f"received {received}",
            registry=registry.host,
        )
    return raw, received


def _too_large_manifest(registry: RegistrySession) -> ArtifactRejected:
    return ArtifactRejected(
        "too-large",
        f"rejected (too-large): the manifest is over {MAX_MANIFEST_BYTES} bytes",
        registry=registry.host,
    )


def _targets(
    registry: RegistrySession, manifest: DiskManifest, to_dir: Path, *, overwrite: bool
) -> list[Path]:
    """Where each layer goes, in order: refused before any download when a
    title is not a plain name, two layers share a name, or a file is in the way."""
    targets: list[Path] = []
    for index, layer in enumerate(manifest.layers):
        title = layer.annotations.get(TITLE)
        if title is not None and not is_plain_file_name(title):
            raise ArtifactRejected(
                "unsafe-name",
                f"rejected (unsafe-name): layers[{index}] is titled {ascii(title)[:120]}, "
                "which is not a plain file name",
                registry=registry.host,
            )
        path = to_dir / (title or name_for_digest(layer.digest))
        if path in targets:
            raise ArtifactRejected(
                "malformed",
                f"rejected (malformed): two layers are both {path.name!r}",
                registry=registry.host,
            )
        if not overwrite and os.path.lexists(path):
            raise Conflict(f"{path}: exists already", hint="pull into another folder")
        targets.append(path)
    return targets


class _Parts:
    """Temporary files in the target folder, removed unless published."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.open: list[tuple[BinaryIO, Path]] = []
        self.published: list[Path] = []

    def new(self) -> tuple[BinaryIO, Path]:
        handle, name = tempfile.mkstemp(prefix=PART_PREFIX, suffix=".part", dir=self.folder)
        part = (os.fdopen(handle, "wb"), Path(name))
        self.open.append(part)
        return part


@contextlib.contextmanager
def _parts(folder: Path) -> Iterator[_Parts]:
    parts = _Parts(folder)
    try:
        yield parts
    except BaseException:
        for path in parts.published:
            path.unlink(missing_ok=True)
        raise
    finally:
        for stream, path in parts.open:
            stream.close()
            path.unlink(missing_ok=True)


def _download(
    registry: RegistrySession,
    layer: Descriptor,
    part: tuple[BinaryIO, Path],
    target: Path,
    progress: ProgressCallback | None,
) -> None:
    """Stream one blob into ``part``: stopped at the first byte past the
    declared size, refused when short or when its sha256 is not the layer's."""
    stream, _ = part
    action = f"get blob {layer.digest}"
    response = blob_response(registry, layer, action)
    announced = response.headers.get("Content-Length", "")
    if announced.isdigit() and int(announced) > layer.size:
        response.close()
        raise _size_mismatch(registry, layer, f"the registry announces {announced} bytes")
    digest = hashlib.sha256()
    done = 0
    pace = Pace(registry.timeouts)
    try:
        with registry.translated(action):
            # As the bytes arrive: a chunk size would make httpx2 wait for a
            # whole chunk before the size and the pace are checked.
            for chunk in response.iter_raw():
                done += len(chunk)
                if done > layer.size:
                    raise _size_mismatch(registry, layer, "more bytes arrived")
                digest.update(chunk)
                stream.write(chunk)
                pace.moved(len(chunk))
                if progress is not None:
                    progress(TransferState(Step.DOWNLOAD, target.name, done, layer.size))
    finally:
        response.close()
    if done < layer.size:
        raise _size_mismatch(registry, layer, f"the transfer ended after {done} bytes")
    received = f"sha256:{digest.hexdigest()}"
    if received != layer.digest:
        raise ArtifactRejected(
            "digest-mismatch",
            f"rejected (digest-mismatch): blob {target.name}: expected {layer.digest}, "
            f"received {received}",
            registry=registry.host,
        )
    stream.flush()
    os.fsync(stream.fileno())


def blob_response(
    registry: RegistrySession,
    layer: Descriptor,
    action: str,
    *,
    headers: Mapping[str, str] | None = None,
    statuses: tuple[int, ...] = (200,),
    check_url: Callable[[str], None] | None = None,
) -> httpx2.Response:
    """The blob's answer (one of ``statuses``), through the redirects
    registries send blobs by (to a storage service), each target passed to
    ``check_url`` first; the token goes only to the registry itself."""
    url = registry.url(f"blobs/{layer.digest}")
    for _ in range(MAX_REDIRECTS + 1):
        response = registry.send("GET", url, action=action, headers=headers)
        target = registry.follow(response, action)
        if target is None:
            if response.status_code not in statuses:
                raise registry.refuse(response, action)
            return response
        if check_url is not None:
            check_url(target)
        url = target
    raise registry.error(f"{action}: over {MAX_REDIRECTS} redirects")


def _size_mismatch(registry: RegistrySession, layer: Descriptor, what: str) -> ArtifactRejected:
    return ArtifactRejected(
        "size-mismatch",
        f"rejected (size-mismatch): blob {layer.digest}: the manifest declares "
        f"{layer.size} bytes, {what}",
        registry=registry.host,
    )


def _publish(parts: _Parts, targets: list[Path], *, overwrite: bool) -> None:
    """Give every part its name, once all have matched."""
    for (stream, path), target in zip(parts.open, targets, strict=True):
        stream.close()
        if not overwrite and os.path.lexists(target):
            raise Conflict(f"{target}: exists already", hint="pull into another folder")
        path.replace(target)
        parts.published.append(target)
    parts.open.clear()
