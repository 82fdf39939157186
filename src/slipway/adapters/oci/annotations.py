"""The annotations a VM disk image carries as an OCI artifact.

EGI's registry (registry.egi.eu) syncs an image to the clouds when its layer
carries ``eu.egi.cloud.tag``; the ``org.openstack.glance.*`` keys become the
Glance properties of the uploaded image. The manifest itself says where the
image was built from (``org.opencontainers.image.source`` and ``revision``).
Callers give plain fields to :func:`disk_image_annotations` and never spell a
key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from slipway.errors import InputError

__all__ = [
    "ADMIN_USER",
    "ARCHITECTURE",
    "CONTAINER_FORMAT",
    "DESCRIPTION",
    "DISK_FORMAT",
    "DISK_FORMATS",
    "EGI_TAG",
    "EGI_TITLE",
    "OS_DISTRO",
    "OS_TYPE",
    "OS_VERSION",
    "REVISION",
    "SOURCE",
    "TITLE",
    "ArtifactAnnotations",
    "DiskImageFields",
    "disk_image_annotations",
    "disk_image_fields",
]

OS_DISTRO = "org.openstack.glance.os_distro"
OS_VERSION = "org.openstack.glance.os_version"
OS_TYPE = "org.openstack.glance.os_type"
ARCHITECTURE = "org.openstack.glance.architecture"
DISK_FORMAT = "org.openstack.glance.disk_format"
CONTAINER_FORMAT = "org.openstack.glance.container_format"
ADMIN_USER = "org.openstack.glance.os_admin_user"
EGI_TAG = "eu.egi.cloud.tag"
EGI_TITLE = "eu.egi.cloud.image.title"
DESCRIPTION = "eu.egi.cloud.description"
TITLE = "org.opencontainers.image.title"
SOURCE = "org.opencontainers.image.source"
REVISION = "org.opencontainers.image.revision"

# Glance's disk formats: what org.openstack.glance.disk_format may say.
DISK_FORMATS = frozenset(
    {"qcow2", "raw", "vmdk", "vdi", "vhd", "vhdx", "iso", "ploop", "ami", "aki", "ari"}
)

_EMPTY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True)
class ArtifactAnnotations:
    """Annotations for the disk layer and for the manifest, key → text."""

    layer: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    manifest: Mapping[str, str] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        for where, values in (("layer", self.layer), ("manifest", self.manifest)):
            for key, value in values.items():
                if not isinstance(key, str) or not key or not isinstance(value, str):
                    raise InputError(f"{where} annotation {key!r}: keys and values are text")
        object.__setattr__(self, "layer", MappingProxyType(dict(self.layer)))
        object.__setattr__(self, "manifest", MappingProxyType(dict(self.manifest)))


@dataclass(frozen=True)
class DiskImageFields:
    """What the annotations say about a disk image, read back on pull; a
    field the artifact does not carry is ``None``."""

    os_distro: str | None = None
    os_version: str | None = None
    os_type: str | None = None
    architecture: str | None = None
    admin_user: str | None = None
    tag: str | None = None
    disk_format: str | None = None
    container_format: str | None = None
    title: str | None = None
    description: str | None = None
    source: str | None = None
    revision: str | None = None


def disk_image_annotations(
    *,
    os_distro: str,
    os_version: str,
    architecture: str,
    tag: str,
    admin_user: str | None = None,
    os_type: str = "linux",
    title: str | None = None,
    description: str | None = None,
    source: str | None = None,
    revision: str | None = None,
) -> ArtifactAnnotations:
    """The annotations EGI's sync reads, from plain fields.

    ``tag`` is the image's version as EGI shows it (``eu.egi.cloud.tag``,
    ``2026-11-29-4d7122d6``); ``title`` and ``description`` are for people.
    ``source`` (a URL) and ``revision`` (a commit) go on the manifest. The
    disk format, container format and file name are added by the push, which
    knows them."""
    required = {"os_distro": os_distro, "os_version": os_version}
    required |= {"architecture": architecture, "tag": tag}
    for name, value in required.items():
        if not value.strip():
            raise InputError(f"the image's {name} is empty", field=name)
    layer = {
        OS_DISTRO: os_distro,
        OS_VERSION: os_version,
        OS_TYPE: os_type,
        ARCHITECTURE: architecture,
        EGI_TAG: tag,
    }
    optional = {ADMIN_USER: admin_user, EGI_TITLE: title, DESCRIPTION: description}
    layer |= {key: value for key, value in optional.items() if value}
    manifest = {key: value for key, value in ((SOURCE, source), (REVISION, revision)) if value}
    return ArtifactAnnotations(layer=layer, manifest=manifest)


def disk_image_fields(layer: Mapping[str, str], manifest: Mapping[str, str]) -> DiskImageFields:
    """The fields of a disk layer's and its manifest's annotations."""
    return DiskImageFields(
        os_distro=layer.get(OS_DISTRO),
        os_version=layer.get(OS_VERSION),
        os_type=layer.get(OS_TYPE),
        architecture=layer.get(ARCHITECTURE),
        admin_user=layer.get(ADMIN_USER),
        tag=layer.get(EGI_TAG),
        disk_format=layer.get(DISK_FORMAT),
        container_format=layer.get(CONTAINER_FORMAT),
        title=layer.get(EGI_TITLE),
        description=layer.get(DESCRIPTION),
        source=manifest.get(SOURCE),
        revision=manifest.get(REVISION),
    )
