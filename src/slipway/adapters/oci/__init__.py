"""VM disk images as OCI artifacts.

``reference`` parses ``oci://host/repository:tag@sha256:…``; ``annotations``
holds EGI's annotation keys and builds them from plain fields; ``manifest``
writes and strictly reads the artifact's manifest; ``files`` says which
layer titles may become file names.
"""

from slipway.adapters.oci.annotations import (
    ArtifactAnnotations,
    DiskImageFields,
    disk_image_annotations,
    disk_image_fields,
)
from slipway.adapters.oci.manifest import (
    DISK_ARTIFACT_TYPE,
    DISK_MEDIA_TYPE,
    MANIFEST_MEDIA_TYPE,
    MAX_MANIFEST_BYTES,
)
from slipway.adapters.oci.reference import OciReference, parse_reference

__all__ = [
    "DISK_ARTIFACT_TYPE",
    "DISK_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "MAX_MANIFEST_BYTES",
    "ArtifactAnnotations",
    "DiskImageFields",
    "OciReference",
    "disk_image_annotations",
    "disk_image_fields",
    "parse_reference",
]
