"""The ``local`` driver: QEMU VMs on this machine (DESIGN.md §7)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from slipway.connectors.local._accel import available_accelerators
from slipway.connectors.local.connector import ImagePath, LocalConnector
from slipway.connectors.local.images import LocalImages, StoreImages

__all__ = [
    "ImagePath",
    "LocalConnector",
    "LocalImages",
    "StoreImages",
    "available_accelerators",
    "connect",
]


def connect(cloud: str, options: Mapping[str, Any]) -> LocalConnector:
    """A local cloud. ``options`` (the operator's, never a definition's):
    ``data_dir`` (required), ``images`` (a :class:`LocalImages`; default the
    image store in ``<data_dir>/images``), ``image_path`` (a callable image id
    -> qcow2 path, overriding the store's), ``accelerator`` (auto | kvm |
    tcg), ``qemu`` and ``qemu_img`` (binaries)."""
    return LocalConnector(
        cloud,
        Path(options["data_dir"]),
        images=options.get("images"),
        image_path=options.get("image_path"),
        accelerator=options.get("accelerator", "auto"),
        qemu=options.get("qemu", "qemu-system-x86_64"),
        qemu_img=options.get("qemu_img", "qemu-img"),
    )
