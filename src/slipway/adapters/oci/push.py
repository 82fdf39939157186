"""Pushing a disk image file to a registry as an OCI artifact.

The file is read twice and never held in memory: once for its sha256, which
the registry must be told before the upload (to skip a blob it already has,
and to name the blob when the upload ends), then again as it is sent, hashed
again so that a file changed in between is refused rather than published.
The manifest carries no timestamp: the same file and annotations give the
same manifest digest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2

from slipway.adapters.oci._auth import RegistryCredentials
from slipway.adapters.oci._session import RegistrySession
from slipway.adapters.oci._streams import (
    FileChanged,
    Pace,
    ProgressCallback,
    Timeouts,
    file_chunks,
    file_digest,
)
from slipway.adapters.oci.annotations import (
    CONTAINER_FORMAT,
    DISK_FORMAT,
    DISK_FORMATS,
    TITLE,
    ArtifactAnnotations,
)
from slipway.adapters.oci.files import is_plain_file_name
from slipway.adapters.oci.manifest import (
    DISK_MEDIA_TYPE,
    EMPTY_CONFIG,
    EMPTY_DIGEST,
    MANIFEST_MEDIA_TYPE,
    Descriptor,
    DiskManifest,
    render_manifest,
)
from slipway.adapters.oci.reference import OciReference, parse_reference
from slipway.errors import InputError

__all__ = ["PushedArtifact", "push_disk_image"]

QCOW2_MAGIC = b"QFI\xfb"


@dataclass(frozen=True)
class PushedArtifact:
    """What a push left in the registry. ``reference`` is pinned to the
    manifest's digest (what a signed image list carries); ``layer_size`` is
    in bytes; ``uploaded`` is false when the registry had the disk already."""

    reference: OciReference
    manifest_digest: str
    layer_digest: str
    layer_size: int
    uploaded: bool


def push_disk_image(
    path: Path,
    reference: OciReference | str,
    *,
    annotations: ArtifactAnnotations,
    disk_format: str = "qcow2",
    progress: ProgressCallback | None = None,
    credentials: RegistryCredentials | None = None,
    plain_http: bool | None = None,
    timeouts: Timeouts = Timeouts(),
) -> PushedArtifact:
    """Upload the disk image at ``path`` as one ``application/x-qemu-disk``
    layer under ``reference``'s tag, with ``annotations`` (see
    :func:`~slipway.adapters.oci.annotations.disk_image_annotations`) and
    the disk format, ``bare`` container format and file name added.

    ``plain_http`` forces ``http://`` (true) or ``https://`` (false); by
    default loopback registries are spoken to in plain HTTP."""
    target = parse_reference(reference) if isinstance(reference, str) else reference
    if target.digest is not None or target.tag is None:
        raise InputError(f"{target}: a push names a tag, not a digest", field="REFERENCE")
    layer_annotations = _layer_annotations(path, annotations, disk_format)
    _check_disk_file(path, disk_format)
    try:
        digest, size = file_digest(path, progress)
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", field="FILE") from None
    with RegistrySession(
        target,
        actions=("pull", "push"),
        credentials=credentials,
        plain_http=plain_http,
        timeouts=timeouts,
    ) as registry:
        if not _has_blob(registry, EMPTY_DIGEST):
            _upload(registry, EMPTY_DIGEST, EMPTY_CONFIG, len(EMPTY_CONFIG))
        uploaded = not _has_blob(registry, digest)
        if uploaded:
            _upload_file(registry, path, digest, size, progress)
        layer = Descriptor(DISK_MEDIA_TYPE, digest, size, layer_annotations)
        manifest = render_manifest(DiskManifest(layers=(layer,), annotations=annotations.manifest))
        manifest_digest = _put_manifest(registry, target.tag, manifest)
    return PushedArtifact(
        reference=target.with_digest(manifest_digest),
        manifest_digest=manifest_digest,
        layer_digest=digest,
        layer_size=size,
        uploaded=uploaded,
    )


def _layer_annotations(
    path: Path, annotations: ArtifactAnnotations, disk_format: str
) -> dict[str, str]:
    if disk_format not in DISK_FORMATS:
        known = ", ".join(sorted(DISK_FORMATS))
        raise InputError(f"disk format {disk_format!r} is not one of {known}", field="disk_format")
    if not is_plain_file_name(path.name):
        raise InputError(f"{path}: the file name cannot be an artifact's title", field="FILE")
    added = {DISK_FORMAT: disk_format, CONTAINER_FORMAT: "bare", TITLE: path.name}
    for key, value in added.items():
        given = annotations.layer.get(key)
        if given is not None and given != value:
            raise InputError(f"annotation {key} is {given!r}, but the push makes it {value!r}")
    return {**annotations.layer, **added}


def _check_disk_file(path: Path, disk_format: str) -> None:
    """The file exists and, said to be qcow2, starts as one: a mistake
    caught here costs nothing, published it costs every cloud a download."""
    try:
        if not path.is_file():
            raise InputError(f"{path}: no such file", field="FILE")
        with path.open("rb") as stream:
            head = stream.read(len(QCOW2_MAGIC))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", field="FILE") from None
    if disk_format == "qcow2" and head != QCOW2_MAGIC:
        raise InputError(
            f"{path}: not a qcow2 image", field="FILE", hint="give its disk format (raw, vmdk …)"
        )


def _has_blob(registry: RegistrySession, digest: str) -> bool:
    """Whether the repository holds the blob. A registry that keeps blobs in
    object storage answers with a redirect to it, which it sends only for a
    blob it found."""
    action = f"look for blob {digest}"
    response = registry.send("HEAD", registry.url(f"blobs/{digest}"), action=action)
    response.close()
    if response.status_code == 200 or response.is_redirect:
        return True
    if response.status_code == 404:
        return False
    raise registry.refuse(response, action)


def _start_upload(registry: RegistrySession, digest: str) -> str:
    """The URL the blob's bytes go to, as the registry's upload session says,
    with the digest that will close it."""
    action = f"start the upload of {digest}"
    response = registry.send("POST", registry.url("blobs/uploads/"), action=action)
    location = response.headers.get("Location")
    if response.status_code != 202 or not location:
        raise registry.refuse(response, action)
    response.close()
    url = response.request.url.join(location)
    if url.scheme not in ("http", "https") or (
        response.request.url.scheme == "https" and url.scheme != "https"
    ):
        raise registry.error(f"{action}: refused an upload location {str(url)[:200]!r}")
    return str(url.copy_merge_params({"digest": digest}))


def _upload(registry: RegistrySession, digest: str, content: bytes, size: int) -> None:
    _finish_upload(registry, digest, _start_upload(registry, digest), content, size)


def _upload_file(
    registry: RegistrySession,
    path: Path,
    digest: str,
    size: int,
    progress: ProgressCallback | None,
) -> None:
    location = _start_upload(registry, digest)
    pace = Pace(registry.timeouts)
    chunks = file_chunks(path, digest=digest, size=size, pace=pace, progress=progress)
    try:
        _finish_upload(registry, digest, location, chunks, size)
    except FileChanged as exc:
        raise InputError(str(exc), field="FILE", hint="push it again once it is written") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}", field="FILE") from None


def _finish_upload(
    registry: RegistrySession,
    digest: str,
    location: str,
    content: bytes | Iterator[bytes],
    size: int,
) -> None:
    """Send the blob's bytes in one PUT, which also closes the upload; the
    registry checks them against ``digest`` before it keeps them."""
    action = f"upload blob {digest}"
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(size)}
    response = registry.send(
        "PUT",
        location,
        action=action,
        headers=headers,
        content=content,
        read_timeout=registry.timeouts.upload_answer,
    )
    if response.status_code != 201:
        raise registry.refuse(response, action)
    response.close()
    _check_echoed_digest(registry, response, digest, action)


def _put_manifest(registry: RegistrySession, tag: str, manifest: bytes) -> str:
    digest = f"sha256:{hashlib.sha256(manifest).hexdigest()}"
    action = f"put the manifest of tag {tag}"
    response = registry.send(
        "PUT",
        registry.url(f"manifests/{tag}"),
        action=action,
        headers={"Content-Type": MANIFEST_MEDIA_TYPE},
        content=manifest,
    )
    if response.status_code != 201:
        raise registry.refuse(response, action)
    response.close()
    _check_echoed_digest(registry, response, digest, action)
    return digest


def _check_echoed_digest(
    registry: RegistrySession, response: httpx2.Response, digest: str, action: str
) -> None:
    """A registry that names another digest for what it just stored did not
    store the bytes sent."""
    echoed = response.headers.get("Docker-Content-Digest")
    if echoed is not None and echoed != digest:
        raise registry.error(f"{action}: the registry stored {echoed[:80]!r}, not {digest}")
