"""Image upload to Glance: streamed from the file, hidden until verified.

The record is created private and hidden (``os_hidden``), the file is sent in
one streamed PUT while its SHA-512 and MD5 are computed on the way (no second
copy in memory, no second read), and the image is shown only once Glance's
own hash of what it stored matches. A mismatch deletes the image.

A sync's download can be sent while it arrives (:func:`upload_stream`): its
SHA-512 is known from the list and checked by the download, whose last
bytes are held back until it matched, so the PUT cannot end on bad bytes.

openstacksdk traps avoided: ``update_image`` sends a patch that drops the
properties it was not given — ``update_image_properties`` merges; the image a
create returns is still ``queued`` — it is fetched again until ``active``.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast

from slipway.connectors.openstack._errors import translated
from slipway.domain.machines import ArrivingBytes, CloudImage, ImageStream
from slipway.errors import CloudError, ImageFileError

if TYPE_CHECKING:
    from openstack.connection import Connection
    from openstack.image.v2._proxy import Proxy as ImageProxy
    from openstack.image.v2.image import Image

__all__ = [
    "UPLOAD_TIMEOUT_S",
    "find",
    "glance",
    "hide",
    "share",
    "to_cloud_image",
    "upload",
    "upload_stream",
    "users",
]

UPLOAD_TIMEOUT_S = 600.0
"""How long Glance may take, after the upload, to make the image ``active``."""
_POLL_S = 0.5
_CHUNK = 1 << 20


class _HashingReader:
    """A file as a request body: read in chunks, hashed as it is read —
    unless its SHA-512 is already known (a sync's download carries it), in
    which case nothing is hashed on the way: Glance hashes what it stores,
    and that is compared with the known value."""

    def __init__(
        self, file: BinaryIO | ArrivingBytes, size: int, known_sha512: str | None = None
    ) -> None:
        self._file = file
        self._size = size
        self.known_sha512 = known_sha512
        self.sha512 = hashlib.sha512()
        self.md5 = hashlib.md5(usedforsecurity=False)  # Glance's legacy ``checksum``

    def read(self, size: int = _CHUNK) -> bytes:
        chunk = self._file.read(_CHUNK if size is None or size < 0 else size)
        if self.known_sha512 is None:
            self.sha512.update(chunk)
            self.md5.update(chunk)
        return chunk

    def __len__(self) -> int:
        return self._size


def glance(connection: Connection) -> ImageProxy:
    """The image service's v2 proxy (the SDK types it as v1 or v2)."""
    return cast("ImageProxy", connection.image)


_CORE = frozenset({
    "checksum", "container_format", "created_at", "direct_url", "disk_format", "file",
    "id", "locations", "metadata", "min_disk", "min_ram", "name", "os_hash_algo",
    "os_hash_value", "os_hidden", "owner", "properties", "protected", "schema", "size",
    "status", "store", "stores", "tags", "updated_at", "url", "virtual_size", "visibility",
})  # fmt: skip
"""Glance's own fields: everything else on an image is a property someone set."""


def _properties(image: Image) -> dict[str, str]:
    """Every property of the image, under Glance's names: the SDK keeps the ones
    it knows (``os_distro``, ``hw_disk_bus`` …) as attributes, the rest apart."""
    from openstack.fields import Body

    found = {str(k): str(v) for k, v in (image.properties or {}).items() if k not in _CORE}
    for attribute, field in vars(type(image)).items():
        if isinstance(field, Body) and field.name not in _CORE:
            value = getattr(image, attribute)
            if value is not None:
                found[field.name] = str(value)
    return found


def to_cloud_image(image: Image) -> CloudImage:
    return CloudImage(
        str(image.id),
        str(image.name or image.id),
        _properties(image),
        ready=image.status == "active",
        hidden=bool(image.is_hidden),
    )


def find(connection: Connection, properties: Mapping[str, str]) -> list[CloudImage]:
    """The project's own images carrying all of ``properties``, hidden ones
    too (Glance leaves those out of a listing unless asked for them)."""
    proxy = glance(connection)
    owner = connection.current_project_id
    found = []
    for hidden in (False, True):
        for image in proxy.images(owner=owner, is_hidden=hidden):
            listed = to_cloud_image(image)
            if all(listed.properties.get(k) == v for k, v in properties.items()):
                found.append(listed)
    return found


def share(connection: Connection, image_id: str, project: str) -> None:
    """Make the image ``shared`` with ``project`` and accept it for them, so it
    is in their image list too (accepting needs the admin role; without it
    the member stays ``pending`` and can still boot the image by id)."""
    from openstack import exceptions

    proxy = glance(connection)
    image = proxy.get_image(image_id)
    if image.visibility == "private":
        proxy.update_image(image, visibility="shared")
    if proxy.find_member(project, image) is None:
        proxy.add_member(image, member=project)
    with contextlib.suppress(exceptions.ForbiddenException):
        proxy.update_member(project, image, status="accepted")


def hide(connection: Connection, image_id: str) -> None:
    proxy = glance(connection)
    proxy.update_image_properties(proxy.get_image(image_id), meta={"os_hidden": True})


def users(connection: Connection, image_id: str) -> list[str]:
    """Servers booted from the image: in every project when the credentials
    may look there, else in the project's own."""
    from openstack import exceptions

    compute = connection.compute
    try:
        servers = list(compute.servers(all_projects=True, image=image_id))
    except exceptions.ForbiddenException:
        servers = list(compute.servers(image=image_id))
    return [str(s.id) for s in servers]


def upload(
    cloud: str,
    connection: Connection,
    path: Path,
    name: str,
    properties: Mapping[str, str],
    timeout_s: float = UPLOAD_TIMEOUT_S,
) -> CloudImage:
    """Upload the qcow2 file at ``path`` as image ``name`` with ``properties``;
    returns it once Glance holds exactly the file's bytes."""
    from slipway.imagekit.store import known_sha512

    try:
        size = path.stat().st_size
        file = path.open("rb")
    except OSError as exc:
        raise ImageFileError(f"cannot read {path}: {exc}") from exc
    with file:
        reader = _HashingReader(file, size, known_sha512(path))
        return _send(cloud, connection, reader, path, name, properties, timeout_s)


def upload_stream(
    cloud: str,
    connection: Connection,
    stream: ImageStream,
    name: str,
    properties: Mapping[str, str],
    timeout_s: float = UPLOAD_TIMEOUT_S,
) -> CloudImage:
    """Upload a qcow2 file while it downloads; the same promises as :func:`upload`."""
    file = stream.open()
    try:
        reader = _HashingReader(file, stream.size, stream.sha512)
        return _send(cloud, connection, reader, stream.path, name, properties, timeout_s)
    finally:
        file.close()


def _send(
    cloud: str,
    connection: Connection,
    reader: _HashingReader,
    path: Path,
    name: str,
    properties: Mapping[str, str],
    timeout_s: float,
) -> CloudImage:
    """Create the hidden record, PUT the bytes, check Glance's hash, show it."""
    with translated(cloud, f"upload image {name}"):
        from openstack.image.v2.image import Image

        proxy = glance(connection)
        # Not proxy.create_image: it adds bookkeeping properties of its own.
        record = Image.new(
            name=name, disk_format="qcow2", container_format="bare", visibility="private",
            is_hidden=True, **properties,
        ).create(proxy)  # fmt: skip
        try:
            record.upload(proxy, data=reader, size=len(reader))
            stored = _active(cloud, connection, str(record.id), timeout_s)
            _verify(cloud, stored, reader, len(reader), path)
            proxy.update_image_properties(stored, meta={"os_hidden": False})
            return to_cloud_image(proxy.get_image(stored.id))
        except BaseException:
            proxy.delete_image(record.id, ignore_missing=True)
            raise


def _active(cloud: str, connection: Connection, image_id: str, timeout_s: float) -> Image:
    """The image once Glance made it ``active``; polls every half second."""
    deadline = time.monotonic() + timeout_s
    while True:
        image = glance(connection).get_image(image_id)
        if image.status == "active":
            return image
        if image.status in ("killed", "deleted", "deactivated"):
            raise CloudError(f"upload image {image.name}: Glance says {image.status}", cloud=cloud)
        if time.monotonic() > deadline:
            raise CloudError(
                f"upload image {image.name}: still {image.status} after {timeout_s:g} s",
                cloud=cloud,
            )
        time.sleep(_POLL_S)


def _md5_of(path: Path) -> str:
    """The file's MD5, read once more: only for a Glance that does not hash
    with SHA-512, when nothing was hashed on the way."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(cloud: str, image: Image, reader: _HashingReader, size: int, path: Path) -> None:
    """Glance's hash of the stored bytes (``os_hash_value``, SHA-512 by
    default; else the MD5 ``checksum``) must be the file's."""
    if image.hash_algo == "sha512" and image.hash_value:
        stored = str(image.hash_value)
        sent = reader.known_sha512 or reader.sha512.hexdigest()
    else:  # a Glance hashing otherwise: its MD5 ``checksum``
        stored = str(image.checksum or "")
        sent = reader.md5.hexdigest() if reader.known_sha512 is None else _md5_of(path)
    if stored != sent or image.size != size:
        raise CloudError(
            f"upload image {image.name}: Glance holds {image.size} bytes hashing to "
            f"{stored or 'nothing'}, the file is {size} bytes hashing to {sent}",
            cloud=cloud,
            hint="the upload was damaged on the way; the image was deleted, upload it again",
        )
