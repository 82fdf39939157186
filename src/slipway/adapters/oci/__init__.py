"""VM disk images as OCI artifacts: pushed to a registry and pulled back,
every digest checked.

``reference`` parses ``oci://host/repository:tag@sha256:…``; ``annotations``
holds EGI's annotation keys and builds them from plain fields; ``manifest``
writes and strictly reads the artifact's manifest; ``push`` and ``pull`` move
a disk file; ``files`` says which layer titles may become file names. The
HTTP conversation (authentication, timeouts, the registry's errors in
Slipway's words) is ``_session``'s, over httpx2.
"""

from slipway.adapters.oci._auth import RegistryCredentials
from slipway.adapters.oci._streams import ProgressCallback, Step, Timeouts, Transfer
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
from slipway.adapters.oci.pull import PulledArtifact, PulledFile, pull_disk_image
from slipway.adapters.oci.push import PushedArtifact, push_disk_image
from slipway.adapters.oci.reference import OciReference, parse_reference

__all__ = [
    "DISK_ARTIFACT_TYPE",
    "DISK_MEDIA_TYPE",
    "MANIFEST_MEDIA_TYPE",
    "MAX_MANIFEST_BYTES",
    "ArtifactAnnotations",
    "DiskImageFields",
    "OciReference",
    "ProgressCallback",
    "PulledArtifact",
    "PulledFile",
    "PushedArtifact",
    "RegistryCredentials",
    "Step",
    "Timeouts",
    "Transfer",
    "disk_image_annotations",
    "disk_image_fields",
    "parse_reference",
    "pull_disk_image",
    "push_disk_image",
]
