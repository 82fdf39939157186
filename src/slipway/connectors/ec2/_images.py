"""EC2's image service as the port needs it: AMIs uploaded from qcow2 files
through the EBS direct APIs, found by their tags, shared, hidden, deleted.

Upload. The qcow2 is converted to a sparse raw file next to it (qemu-img);
a snapshot is started with the properties as its tags; every 512 KiB block
holding data is written with its SHA-256 (all-zero blocks are left out: an
EBS snapshot reads zeros where nothing was written); the snapshot is completed
with the linear aggregate of those checksums, so EBS keeps it only if it holds
exactly those blocks. Once EC2 reports it ``completed``, the AMI is registered
on it with the properties as tags in the same call, so nobody sees an
untagged AMI. A failure after the snapshot was started deregisters the AMI
and deletes the snapshot before the error is raised; if that clean-up fails
too, the snapshot is left tagged and :func:`find` reports it.

Tags. EC2 allows 50 tags on a resource, keys of at most 128 characters and
values of at most 256, none starting with ``aws:``. Properties beyond that are
refused before anything is uploaded rather than truncated: a truncated value
would no longer match when a sync looks the image up by it. One tag is kept
for Slipway's own use (:data:`HIDDEN_TAG` on the AMI, :data:`IMAGE_TAG` on the
snapshot), so at most 49 properties.

Hidden. ``hide`` deprecates the AMI (``EnableImageDeprecation``): EC2 then
leaves it out of ``DescribeImages`` unless ``IncludeDeprecated`` is asked for,
while it can still be described and launched by its id, and machines using it
keep running. EC2 refuses a deprecation time in the past and rounds it to the
minute, so the AMI is also tagged ``slipway-hidden=true``, which Slipway reads
at once.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from slipway.domain.machines import CloudImage
from slipway.errors import CloudError, ImageFileError, InputError, PropertiesDoNotFit, ToolError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import ImageTypeDef

__all__ = [
    "BLOCK",
    "HIDDEN_TAG",
    "IMAGE_TAG",
    "UPLOAD_TIMEOUT_S",
    "delete",
    "find",
    "hide",
    "share",
    "to_cloud_image",
    "upload",
]

BLOCK = 512 * 1024
"""The EBS direct APIs' block, in bytes."""
GIB = 1 << 30
HIDDEN_TAG = "slipway-hidden"
IMAGE_TAG = "slipway-image"
"""On every snapshot an upload starts: the image's name, and the mark that
lets :func:`find` report a snapshot no AMI uses without touching others."""
UPLOAD_TIMEOUT_S = 1800.0
"""How long EC2 may take, once the blocks are written, to complete the
snapshot and make the AMI ``available``."""
POLL_S = 2.0
MAX_PROPERTIES = 49
_NAME = re.compile(r"[A-Za-z0-9()\[\] ./\-'@_]{3,128}")
_ARCHITECTURES = {"x86_64": "x86_64", "amd64": "x86_64", "arm64": "arm64", "aarch64": "arm64"}
_ZERO = bytes(BLOCK)
_GONE = frozenset({
    "InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidSnapshot.NotFound",
})  # fmt: skip


def _tag_list(tags: Mapping[str, str]) -> list[Any]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _filter_value(value: str) -> str:
    """EC2 filter values treat ``*`` and ``?`` as wildcards: match them literally."""
    return re.sub(r"([\\*?])", r"\\\1", value)


def check_properties(name: str, properties: Mapping[str, str]) -> None:
    """Refuse, before anything is uploaded, what EC2 would refuse or cut."""
    if not _NAME.fullmatch(name):
        raise InputError(
            f"image name {name!r}: EC2 wants 3 to 128 letters, digits, spaces "
            "and ( ) [ ] . / - ' @ _",
            field="name",
        )
    if len(properties) > MAX_PROPERTIES:
        raise PropertiesDoNotFit(
            f"image {name}: {len(properties)} properties, EC2 keeps at most "
            f"{MAX_PROPERTIES} as tags (50 less one for Slipway)",
            field="properties",
        )
    for key, value in properties.items():
        if key in (HIDDEN_TAG, IMAGE_TAG) or key.lower().startswith("aws:"):
            raise InputError(f"image {name}: property {key!r} is a reserved tag name")
        if not 1 <= len(key) <= 128:
            raise PropertiesDoNotFit(f"image {name}: property name {key[:40]!r}… is longer "
                                     "than EC2's 128 characters for a tag key")  # fmt: skip
        if len(value) > 256:
            raise PropertiesDoNotFit(
                f"image {name}: property {key} is {len(value)} characters long, EC2 keeps "
                "at most 256 in a tag value",
                field="properties",
            )


def to_cloud_image(image: ImageTypeDef, now: datetime | None = None) -> CloudImage:
    tags = {t["Key"]: t["Value"] for t in image.get("Tags", [])}
    hidden = tags.pop(HIDDEN_TAG, "") == "true"
    deprecation = image.get("DeprecationTime")
    if deprecation:
        at = datetime.fromisoformat(deprecation.replace("Z", "+00:00"))
        hidden = hidden or at <= (now or datetime.now(UTC))
    return CloudImage(
        image["ImageId"],
        image.get("Name", image["ImageId"]),
        tags,
        ready=image.get("State") == "available",
        hidden=hidden,
    )


def _snapshot_ids(image: ImageTypeDef) -> list[str]:
    return [
        m["Ebs"]["SnapshotId"]
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]


def own_images(client: EC2Client, filters: list[Any]) -> list[ImageTypeDef]:
    """The account's AMIs matching ``filters``, deprecated ones included."""
    return client.describe_images(Owners=["self"], IncludeDeprecated=True, Filters=filters)[
        "Images"
    ]


def find(client: EC2Client, properties: Mapping[str, str]) -> list[CloudImage]:
    """The account's AMIs carrying all of ``properties``, deprecated ones too,
    and the snapshots of uploads that stopped before their AMI was registered
    (id the snapshot's, ``ready`` false, ``hidden`` true)."""
    filters: list[Any] = [
        {"Name": f"tag:{k}", "Values": [_filter_value(v)]} for k, v in properties.items()
    ]
    found, used = [], set()
    for image in own_images(client, filters):
        listed = to_cloud_image(image)
        if all(listed.properties.get(k) == v for k, v in properties.items()):
            found.append(listed)
            used.update(_snapshot_ids(image))
    marked = [*filters, {"Name": "tag-key", "Values": [IMAGE_TAG]}]
    for page in client.get_paginator("describe_snapshots").paginate(
        OwnerIds=["self"], Filters=marked
    ):
        for snapshot in page["Snapshots"]:
            tags = {t["Key"]: t["Value"] for t in snapshot.get("Tags", [])}
            name = tags.pop(IMAGE_TAG, "")
            if snapshot["SnapshotId"] in used:
                continue
            if all(tags.get(k) == v for k, v in properties.items()):
                found.append(
                    CloudImage(snapshot["SnapshotId"], name, tags, ready=False, hidden=True)
                )
    return found


def share(client: EC2Client, image_id: str, project: str) -> None:
    """Let the AWS account ``project`` launch the AMI and read its snapshots
    (without ``createVolumePermission`` on them a launch fails)."""
    if not re.fullmatch(r"\d{12}", project):
        raise InputError(
            f"share image {image_id}: {project!r} is not an AWS account id (12 digits)",
            field="project",
        )
    client.modify_image_attribute(ImageId=image_id, LaunchPermission={"Add": [{"UserId": project}]})
    (image,) = client.describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
    for snapshot_id in _snapshot_ids(image):
        client.modify_snapshot_attribute(
            SnapshotId=snapshot_id,
            Attribute="createVolumePermission",
            OperationType="add",
            UserIds=[project],
        )


def hide(client: EC2Client, image_id: str) -> None:
    """Tag the AMI hidden, then deprecate it a minute from now (EC2 refuses
    a time in the past). A snapshot id is tagged only."""
    client.create_tags(Resources=[image_id], Tags=[{"Key": HIDDEN_TAG, "Value": "true"}])
    if not image_id.startswith("snap-"):
        at = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=1)
        client.enable_image_deprecation(ImageId=image_id, DeprecateAt=at)


def _code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def delete(client: EC2Client, image_id: str) -> None:
    """Deregister the AMI, then delete its snapshots (EC2 refuses to delete a
    snapshot an AMI still uses); a ``snap-`` id deletes that snapshot. What is
    already gone is skipped."""
    import botocore.exceptions as bx

    snapshots = [image_id] if image_id.startswith("snap-") else []
    if not snapshots:
        try:
            images = client.describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
            for image in images:
                snapshots += _snapshot_ids(image)
            if images:
                client.deregister_image(ImageId=image_id)
        except bx.ClientError as exc:
            if _code(exc) not in _GONE:
                raise
    for snapshot_id in snapshots:
        try:
            client.delete_snapshot(SnapshotId=snapshot_id)
        except bx.ClientError as exc:
            if _code(exc) not in _GONE:
                raise


# -- upload ------------------------------------------------------------------------


def _raw_copy(path: Path) -> Path:
    """``path`` converted to a sparse raw file beside it (the caller deletes it)."""
    from slipway.imagekit.tools import qemu_img_info, run

    info = qemu_img_info(path, "qcow2")
    if info.get("backing-filename"):
        raise ImageFileError(f"{path} has a backing file; upload a self-contained qcow2")
    try:
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".raw")
    except OSError as exc:
        raise ImageFileError(f"cannot write a raw copy of {path} beside it: {exc}") from exc
    os.close(fd)
    raw = Path(name)
    try:
        run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, raw])
    except ToolError as exc:
        raw.unlink(missing_ok=True)
        raise ImageFileError(f"cannot read {path}: {exc.message}") from exc
    except BaseException:
        raw.unlink(missing_ok=True)
        raise
    return raw


def data_blocks(file: BinaryIO, size: int) -> Iterator[tuple[int, bytes]]:
    """(index, bytes) of every 512 KiB block of the raw file that is not all
    zeros, in order, the last one padded with zeros; holes are skipped
    without being read."""
    fd = file.fileno()
    offset = 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nothing but holes after offset
                return
            raise
        end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        first, last = start // BLOCK, (end - 1) // BLOCK
        for index in range(first, last + 1):
            file.seek(index * BLOCK)
            block = file.read(BLOCK).ljust(BLOCK, b"\0")
            if block != _ZERO:
                yield index, block
        offset = (last + 1) * BLOCK


def _wait(
    cloud: str,
    what: str,
    read_state: Callable[[], tuple[str, str]],
    done: str,
    timeout_s: float,
    poll_s: float,
) -> None:
    """Poll ``read_state`` (state, message) every ``poll_s`` seconds until it
    is ``done``; a failed state or ``timeout_s`` seconds is a ``CloudError``."""
    deadline = time.monotonic() + timeout_s
    while True:
        state, message = read_state()
        if state == done:
            return
        if state in ("error", "failed", "invalid", "deregistered"):
            raise CloudError(f"{what}: EC2 says {state}{': ' + message if message else ''}",
                             cloud=cloud)  # fmt: skip
        if time.monotonic() > deadline:
            raise CloudError(f"{what}: still {state} after {timeout_s:g} s", cloud=cloud)
        time.sleep(poll_s)


def upload(
    cloud: str,
    client: EC2Client,
    ebs: Any,
    path: Path,
    name: str,
    properties: Mapping[str, str],
    *,
    timeout_s: float = UPLOAD_TIMEOUT_S,
    poll_s: float = POLL_S,
) -> CloudImage:
    """Upload the qcow2 file at ``path`` as AMI ``name`` tagged ``properties``
    (see the module's docstring); returns it once it is ``available``."""
    check_properties(name, properties)
    architecture = _ARCHITECTURES.get(properties.get("architecture", ""), "x86_64")
    raw = _raw_copy(path)
    snapshot_id = image_id = ""
    try:
        size = raw.stat().st_size
        token = hashlib.sha256(f"{name}\0{sorted(properties.items())}\0{time.time_ns()}".encode())
        snapshot_id = ebs.start_snapshot(
            VolumeSize=max(1, -(-size // GIB)),
            Tags=_tag_list({**properties, IMAGE_TAG: name}),
            Description=f"Slipway image {name}",
            ClientToken=token.hexdigest()[:64],
        )["SnapshotId"]
        digests = []
        with raw.open("rb") as file:
            for index, block in data_blocks(file, size):
                digest = hashlib.sha256(block).digest()
                ebs.put_snapshot_block(
                    SnapshotId=snapshot_id,
                    BlockIndex=index,
                    BlockData=block,
                    DataLength=BLOCK,
                    Checksum=base64.b64encode(digest).decode(),
                    ChecksumAlgorithm="SHA256",
                )
                digests.append(digest)
        ebs.complete_snapshot(
            SnapshotId=snapshot_id,
            ChangedBlocksCount=len(digests),
            Checksum=base64.b64encode(hashlib.sha256(b"".join(digests)).digest()).decode(),
            ChecksumAlgorithm="SHA256",
            ChecksumAggregationMethod="LINEAR",
        )

        def snapshot_state() -> tuple[str, str]:
            (snap,) = client.describe_snapshots(SnapshotIds=[snapshot_id])["Snapshots"]
            return snap.get("State", ""), snap.get("StateMessage", "")

        _wait(cloud, f"upload image {name}: snapshot {snapshot_id}", snapshot_state,
              "completed", timeout_s, poll_s)  # fmt: skip
        image_id = client.register_image(
            Name=name,
            Description=f"Uploaded by Slipway from {path.name}",
            RootDeviceName="/dev/xvda",
            BlockDeviceMappings=[{
                "DeviceName": "/dev/xvda",
                "Ebs": {"SnapshotId": snapshot_id, "VolumeType": "gp3",
                        "DeleteOnTermination": True},
            }],
            VirtualizationType="hvm",
            Architecture=architecture,  # type: ignore[arg-type]
            EnaSupport=True,
            BootMode="uefi-preferred",
            TagSpecifications=[{"ResourceType": "image", "Tags": _tag_list(properties)}],
        )["ImageId"]  # fmt: skip

        def image_state() -> tuple[str, str]:
            images = client.describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
            if not images:
                return "pending", ""
            return images[0].get("State", ""), images[0].get("StateReason", {}).get("Message", "")

        _wait(cloud, f"upload image {name}: AMI {image_id}", image_state, "available",
              timeout_s, poll_s)  # fmt: skip
        (image,) = client.describe_images(ImageIds=[image_id], IncludeDeprecated=True)["Images"]
        return to_cloud_image(image)
    except BaseException:
        # Leaves nothing behind; if this fails too, find() reports the snapshot.
        with contextlib.suppress(Exception):
            if snapshot_id and not image_id:
                # A RegisterImage whose answer was lost may still have made the AMI.
                named = own_images(client, [{"Name": "name", "Values": [_filter_value(name)]}])
                image_id = next((i["ImageId"] for i in named
                                 if snapshot_id in _snapshot_ids(i)), "")  # fmt: skip
            if image_id:
                client.deregister_image(ImageId=image_id)
        with contextlib.suppress(Exception):
            if snapshot_id:
                client.delete_snapshot(SnapshotId=snapshot_id)
        raise
    finally:
        raw.unlink(missing_ok=True)
