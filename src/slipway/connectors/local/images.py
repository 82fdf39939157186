"""Where the local cloud's images come from: the local image store.

The connector needs three things of it (:class:`LocalImages`); the default,
:class:`StoreImages`, is the image kit's store under ``<data_dir>/images``
(``<name>.qcow2`` beside ``<name>.json``), whose entry name is the local
cloud's native image id.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from slipway.domain.clouds import local_image_id_problem
from slipway.domain.machines import CloudImage
from slipway.errors import InputError

__all__ = ["LocalImages", "StoreImages"]


class LocalImages(Protocol):
    def path(self, image_id: str) -> Path:
        """The qcow2 file of ``image_id`` (it may not exist)."""
        ...

    def list(self) -> list[CloudImage]: ...

    def add(self, source: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        """Store ``source``; visible only once complete."""
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
        return [
            CloudImage(e.id, e.name, {**(e.os or {}), "sha512": e.sha512})
            for e in self.store.list()
        ]

    def add(self, source: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        entry = self.store.import_file(source, name, os_info=properties)
        return CloudImage(entry.id, entry.name, {**(entry.os or {}), "sha512": entry.sha512})
