"""What moto's EC2 lacks and the image tests need, filled in as EC2 documents it.

moto 5.2's ``RegisterImage`` keeps only the name: it drops the tags, the
architecture and the block device mappings, and points the AMI at a 15 GB
snapshot of its own. It has no ``EnableImageDeprecation``, and
``DescribeImages`` knows nothing of deprecation. The server runs in the test
process, so these patches make it:

- register the AMI on the root device's snapshot given (which EC2 then
  refuses to delete while the AMI uses it), with the tags of its
  ``TagSpecifications``, its architecture and boot mode;
- record ``DeprecateAt`` and answer it as ``DeprecationTime``; leave an AMI
  past that time out of ``DescribeImages`` unless ``IncludeDeprecated`` is
  asked for or its id is named.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def _deprecated(image: Any, now: datetime) -> bool:
    at: str | None = getattr(image, "deprecation_time", None)
    return at is not None and datetime.fromisoformat(at.replace("Z", "+00:00")) <= now


def fill_moto_gaps() -> None:
    from moto.core.responses import ActionResult
    from moto.ec2.models.amis import Ami
    from moto.ec2.responses.amis import AmisResponse

    mappings_of: Any = vars(Ami)["block_device_mappings"].fget

    def block_device_mappings(self: Any) -> list[dict[str, Any]]:
        mappings: list[dict[str, Any]] = mappings_of(self)
        given = getattr(self, "given_root", None)
        if given is not None:
            mappings[0]["Ebs"].update(given)
        return mappings

    def register_image(self: Any) -> ActionResult:
        name = self._get_param("Name")
        description = self._get_param("Description", "")
        root = self._get_param("RootDeviceName")
        given: dict[str, Any] | None = next(
            (m.get("Ebs", {}) for m in self._get_param("BlockDeviceMappings", [])
             if m.get("DeviceName") == root and m.get("Ebs", {}).get("SnapshotId")),
            None,
        )  # fmt: skip
        snapshot = self.ec2_backend.get_snapshot(given["SnapshotId"]) if given else None
        self.error_on_dryrun()
        image = self.ec2_backend.register_image(name, description)
        if given is not None and snapshot is not None:
            own = image.ebs_snapshot
            own.from_ami = None
            self.ec2_backend.delete_snapshot(own.id)
            snapshot.from_ami = image.id
            image.ebs_snapshot = snapshot
            image.root_device_name, image.root_device_type = root, "ebs"
            image.given_root = {
                "SnapshotId": snapshot.id,
                "VolumeSize": snapshot.volume.size,
                "VolumeType": given.get("VolumeType", "gp3"),
                "DeleteOnTermination": bool(given.get("DeleteOnTermination", True)),
            }
        image.architecture = self._get_param("Architecture") or "x86_64"
        image.virtualization_type = self._get_param("VirtualizationType") or "hvm"
        image.boot_mode = self._get_param("BootMode") or image.boot_mode
        for spec in self._get_param("TagSpecifications", []):
            if spec.get("ResourceType") == "image":
                image.add_tags({t["Key"]: t["Value"] for t in spec.get("Tags", [])})
        return ActionResult({"ImageId": image.id})

    def enable_image_deprecation(self: Any) -> ActionResult:
        ami_id = self._get_param("ImageId")
        at = self._get_param("DeprecateAt")
        self.error_on_dryrun()
        (image,) = self.ec2_backend.describe_images(ami_ids=[ami_id])
        if isinstance(at, datetime):
            at = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        image.deprecation_time = at
        return ActionResult({"Return": True})

    def describe_images(self: Any) -> ActionResult:
        self.error_on_dryrun()
        ami_ids = self._get_param("ImageIds", [])
        images = self.ec2_backend.describe_images(
            ami_ids=ami_ids,
            filters=self._filters_from_querystring(),
            exec_users=self._get_param("ExecutableUsers", []),
            owners=self._get_param("Owners", []),
        )
        if not ami_ids and str(self._get_param("IncludeDeprecated", "")).lower() != "true":
            now = datetime.now(UTC)
            images = [i for i in images if not _deprecated(i, now)]
        return ActionResult({"Images": images})

    Ami.block_device_mappings = property(block_device_mappings)  # type: ignore[method-assign,assignment]
    AmisResponse.register_image = register_image  # type: ignore[method-assign]
    AmisResponse.enable_image_deprecation = enable_image_deprecation  # type: ignore[attr-defined]
    AmisResponse.describe_images = describe_images  # type: ignore[method-assign]
