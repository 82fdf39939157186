"""Which image ``image test`` boots: a qcow2 file, or an entry of the local
image store, named the way a user names it on the command line."""

from __future__ import annotations

from pathlib import Path

from slipway.domain.machines import BootImage
from slipway.errors import ImageFileError, NotFound
from slipway.imagekit.convert import open_image
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.store import ImageStore

__all__ = ["find_bootable"]

_SUFFIXES = (".qcow2", ".img", ".raw", ".vmdk", ".ova")


def find_bootable(image: str, store: ImageStore) -> BootImage:
    """``image`` as a file when one exists there (it must be a self-contained
    qcow2), else as a name in ``store``. Raises ImageFileError or NotFound."""
    path = Path(image)
    if path.exists():
        source = open_image(path)  # refuses a backing file: the guest would read it
        if source.container is not DiskFormat.QCOW2:
            raise ImageFileError(
                f"{path}: a {source.container.value} image; the local cloud boots qcow2",
                hint=f"slipway image convert {path} --to qcow2",
            )
        return BootImage(str(path.resolve()), source.virtual_size, image)
    if "/" in image or image.lower().endswith(_SUFFIXES):
        raise ImageFileError(f"{image}: no such image file")
    try:
        entry = store.get(image)
    except NotFound:
        raise NotFound(
            f"{image}: no such file, and no image {image!r} in the local image store",
            hint="slipway image list shows the stored images",
        ) from None
    return BootImage(entry.id, entry.virtual_size, image)
