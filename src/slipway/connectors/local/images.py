"""Where the local cloud's images come from: the local image store.

The connector needs three things of it (:class:`LocalImages`); the default,
:class:`StoreImages`, is the image kit's store under ``<data_dir>/images``
(``<name>.qcow2`` beside ``<name>.json``), whose entry name is the local
cloud's native image id.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from slipway.domain.clouds import local_image_id_problem
from slipway.domain.machines import CloudImage
from slipway.errors import InputError, NotFound

if TYPE_CHECKING:
    from slipway.imagekit.store import StoredImage

__all__ = ["LocalImages", "StoreImages"]


class LocalImages(Protocol):
    def path(self, image_id: str) -> Path:
        """The qcow2 file of ``image_id`` (it may not exist)."""
        ...

    def list(self) -> list[CloudImage]:
        """Every complete image, hidden ones included."""
        ...

    def add(self, source: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        """Store ``source`` (taken over: the caller does not write to it
        afterwards); visible only once complete."""
        ...

    def hide(self, image_id: str) -> None: ...

    def remove(self, image_id: str) -> None:
        """Delete the image; one already gone is not an error."""
        ...


class StoreImages:
    """:class:`LocalImages` on the image kit's store in ``root``. An image id
    is a store entry's name, never a path."""

    def __init__(self, root: Path) -> None:
        from slipway.imagekit.store import ImageStore  # lazily: only the local cloud needs it

        self.store = ImageStore(root)

    def path(self, image_id: str) -> Path:
        problem = local_image_id_problem(image_id)
        if problem:
            raise InputError(f"native image id {problem}", hint="slipway image list shows them")
        return self.store.image_path(image_id)

    def list(self) -> list[CloudImage]:
        return [_cloud_image(e) for e in self.store.list()]

    def add(self, source: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        # Linked, not copied, when it can be: a sync's download sits in the
        # same data folder and is dropped from its cache once stored, so the
        # bytes are neither written twice nor kept twice.
        entry = self.store.import_file(source, name, properties=properties, link=True)
        return _cloud_image(entry)

    def hide(self, image_id: str) -> None:
        self.store.set_hidden(image_id)

    def remove(self, image_id: str) -> None:
        with contextlib.suppress(NotFound):
            self.store.remove(image_id)


def _cloud_image(entry: StoredImage) -> CloudImage:
    """A store entry as the local cloud lists it: its OS, the properties it
    was stored with, and its SHA-512."""
    properties = {**(entry.os or {}), **(entry.properties or {}), "sha512": entry.sha512}
    return CloudImage(entry.id, entry.name, properties, hidden=entry.hidden)
