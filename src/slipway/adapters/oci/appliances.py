"""Pushing an appliance version's image file as an OCI artifact, with EGI's
annotations taken from the appliance: the marketplace's ``ArtifactPusher``."""

from __future__ import annotations

from pathlib import Path

from slipway.adapters.oci._auth import RegistryCredentials
from slipway.adapters.oci._streams import ProgressCallback
from slipway.adapters.oci.annotations import disk_image_annotations
from slipway.adapters.oci.push import push_disk_image
from slipway.adapters.oci.reference import parse_reference
from slipway.domain.imagelists import glance_os_distro
from slipway.domain.marketplace import Appliance, ApplianceVersion, ImageFile
from slipway.services.marketplace import PushRequest, PushResult

__all__ = ["OciPusher"]


class OciPusher:
    """Pushes over the OCI distribution API (``slipway.adapters.oci``)."""

    def host_of(self, target: str) -> str:
        """The registry host ``target`` names (checked before anything is sent)."""
        return parse_reference(target).host.rsplit(":", 1)[0].strip("[]")

    def push(
        self,
        path: Path,
        appliance: Appliance,
        version: ApplianceVersion,
        image: ImageFile,
        request: PushRequest,
        *,
        source: str,
        progress: ProgressCallback | None = None,
    ) -> PushResult:
        annotations = disk_image_annotations(
            os_distro=glance_os_distro(image.os_name or appliance.os) or appliance.os.lower(),
            os_version=image.os_version or "unknown",
            architecture=image.arch,
            tag=version.version,
            admin_user=request.admin_user,
            title=appliance.title,
            description=appliance.description or None,
            source=source,
            revision=version.version,
        )
        credentials = (
            RegistryCredentials(request.username, request.password or "")
            if request.username
            else None
        )
        pushed = push_disk_image(
            path,
            request.target,
            annotations=annotations,
            disk_format=image.format,
            progress=progress,
            credentials=credentials,
        )
        return PushResult(
            reference=str(pushed.reference),
            manifest_digest=pushed.manifest_digest,
            layer_digest=pushed.layer_digest,
            size=pushed.layer_size,
            uploaded=pushed.uploaded,
        )
