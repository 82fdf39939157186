"""EC2 through boto3.

Retries: botocore's ``standard`` retry mode (``max_attempts`` attempts in all,
default 8): throttling codes (``RequestLimitExceeded``, ``Throttling`` …), HTTP
500/502/503/504 and connection errors or read timeouts are retried with
exponential backoff and full jitter (at most 20 s between attempts), under
botocore's retry quota. What is still failing after that becomes a
``CloudError`` carrying EC2's own code and message.

Idempotency: every instance is tagged with the run id and the client token and
created with EC2's ``ClientToken``. ``RunInstances`` is not retried by botocore
(a lost answer to a create that succeeded would make a second instance on a
cloud that ignores client tokens, as moto does): ``create_machine`` retries it
itself, with the same backoff, looking the token up by tag before every
attempt, so a retried create returns the first instance.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slipway.connectors.ec2 import _images
from slipway.connectors.ec2._errors import translated
from slipway.connectors.limits import limits_of
from slipway.domain.machines import (
    RUN_TAG,
    Capability,
    CloudImage,
    ImageSource,
    ImageStream,
    Machine,
    MachineSpec,
    MachineState,
    Rule,
    SecurityGroup,
)
from slipway.domain.sizes import Flavor
from slipway.errors import CloudError, InputError, NotFound, Unsupported

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ec2.type_defs import InstanceTypeDef, IpPermissionTypeDef

__all__ = ["EC2_STATES", "Ec2Connector"]

# EC2 instance-state-name -> ours. Translated here and nowhere else.
EC2_STATES: dict[str, MachineState] = {
    "pending": MachineState.PENDING,
    "running": MachineState.RUNNING,
    "stopping": MachineState.STOPPING,
    "stopped": MachineState.STOPPED,
    "shutting-down": MachineState.TERMINATED,
    "terminated": MachineState.TERMINATED,
}
TOKEN_TAG = "slipway-token"
GROUP_TAG = "slipway-managed"  # on every security group Slipway created, and only on those
_LIVE_STATES = ["pending", "running", "stopping", "stopped"]
_PROTOCOLS = {"tcp": "tcp", "udp": "udp", "icmp": "icmp", "all": "-1"}


def _client_token(token: str) -> str:
    """EC2 accepts at most 64 ASCII characters; longer tokens are hashed."""
    if len(token) <= 64 and token.isascii():
        return token
    return hashlib.sha256(token.encode()).hexdigest()


def _tags(items: Sequence[Mapping[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or ()}


def _to_machine(instance: InstanceTypeDef) -> Machine:
    tags = _tags(instance.get("Tags"))  # type: ignore[arg-type]
    state_name = instance.get("State", {}).get("Name", "")
    state = EC2_STATES.get(state_name, MachineState.UNKNOWN)
    address = instance.get("PublicIpAddress") or instance.get("PrivateIpAddress")
    reason = instance.get("StateReason", {}).get("Message", "")
    return Machine(
        id=instance["InstanceId"],
        name=tags.get("Name", instance["InstanceId"]),
        state=state,
        address=address if state is MachineState.RUNNING else None,
        ssh_port=22,
        tags={k: v for k, v in tags.items() if k not in ("Name", TOKEN_TAG)},
        image_id=instance.get("ImageId", ""),
        flavor=instance.get("InstanceType", ""),
        cloud_message=reason if state is not MachineState.RUNNING else "",
    )


def _to_permission(rule: Rule) -> IpPermissionTypeDef:
    protocol = _PROTOCOLS[rule.protocol]
    permission: IpPermissionTypeDef = {"IpProtocol": protocol}
    if rule.protocol in ("tcp", "udp"):
        low, high = rule.port_range
        permission["FromPort"], permission["ToPort"] = low, high
    elif rule.protocol == "icmp":
        permission["FromPort"], permission["ToPort"] = -1, -1
    if ":" in rule.source:
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule.source}]
    else:
        permission["IpRanges"] = [{"CidrIp": rule.source}]
    return permission


def _to_rules(permissions: Sequence[IpPermissionTypeDef]) -> list[Rule]:
    rules: list[Rule] = []
    reverse = {v: k for k, v in _PROTOCOLS.items()}
    for p in permissions:
        protocol = reverse.get(str(p.get("IpProtocol")), str(p.get("IpProtocol")))
        ports = ""
        if protocol in ("tcp", "udp"):
            low, high = p.get("FromPort", 0), p.get("ToPort", 65535)
            ports = str(low) if low == high else f"{low}-{high}"
        sources = [r["CidrIp"] for r in p.get("IpRanges", []) if "CidrIp" in r]
        sources += [r["CidrIpv6"] for r in p.get("Ipv6Ranges", []) if "CidrIpv6" in r]
        rules.extend(Rule(protocol, ports, source) for source in sources)
    return rules


_GROUP_RACES = frozenset({
    "InvalidGroup.Duplicate", "InvalidPermission.Duplicate", "InvalidPermission.NotFound",
})  # fmt: skip
"""What EC2 answers when a concurrent ensure of the same group got there first."""
_GROUP_RACE_ATTEMPTS = 5
ENSURED_FOR_S = 30.0
"""How long a group this connector brought to its rules is taken as still so."""

_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
    "TooManyRequestsException", "PriorRequestNotComplete", "RequestTimeout",
})  # fmt: skip


def _retryable(exc: Exception) -> bool:
    """The same errors botocore's standard mode retries: throttling, 5xx, the network."""
    import botocore.exceptions as bx

    if isinstance(exc, bx.ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return exc.response.get("Error", {}).get("Code") in _THROTTLING or status >= 500
    return isinstance(exc, bx.ConnectionError | bx.HTTPClientError)


class Ec2Connector:
    """One EC2 region. ``client`` is a boto3 EC2 client (see ``connect``)."""

    def __init__(
        self,
        cloud: str,
        client: EC2Client,
        *,
        create_client: EC2Client | None = None,
        create_attempts: int = 8,
        subnet_id: str | None = None,
        ebs_client: Any = None,
    ) -> None:
        self.cloud = cloud
        self.client = client
        self.ebs_client = ebs_client  # the EBS direct APIs, for image uploads
        self.image_timeout_s = _images.UPLOAD_TIMEOUT_S
        self.image_poll_s = _images.POLL_S
        self.create_client = create_client or client
        self.create_attempts = create_attempts
        self.subnet_id = subnet_id
        # Runs deployed together ensure the same group over and over: one that
        # this connector brought to the same rules moments ago is taken as is.
        self._ensured: dict[str, tuple[float, tuple[Rule, ...], str]] = {}
        self._root_devices: dict[str, tuple[str, int]] = {}  # AMI → root device, GB
        self._lock = threading.Lock()
        self.unsupported: Mapping[Capability, str] = limits_of("ec2")

    # -- machines ----------------------------------------------------------------

    def _instances(self, filters: list[Any], ids: Sequence[str] = ()) -> Iterator[InstanceTypeDef]:
        paginator = self.client.get_paginator("describe_instances")
        kwargs: dict[str, Any] = {"Filters": filters}
        if ids:
            kwargs["InstanceIds"] = list(ids)
        for page in paginator.paginate(**kwargs):
            for reservation in page.get("Reservations", []):
                yield from reservation.get("Instances", [])

    def _by_token(self, token: str) -> Machine | None:
        live = {"Name": "instance-state-name", "Values": _LIVE_STATES}
        tagged = {"Name": f"tag:{TOKEN_TAG}", "Values": [token]}
        for instance in self._instances([tagged, live]):
            return _to_machine(instance)
        return None

    def create_machine(self, spec: MachineSpec) -> Machine:
        token = _client_token(spec.client_token) if spec.client_token else ""
        with translated(self.cloud, "create machine"):
            kwargs = self._run_arguments(spec, token)
            if not token:
                return _to_machine(self.client.run_instances(**kwargs)["Instances"][0])
            for attempt in range(1, self.create_attempts + 1):
                # moto ignores client tokens, and a token alone does not find an
                # instance whose creation answer was lost: look for it by tag.
                if attempt > 1 or not spec.first_attempt:
                    existing = self._by_token(token)
                    if existing is not None:
                        return existing
                try:
                    reply = self.create_client.run_instances(**kwargs)
                except Exception as exc:
                    if attempt == self.create_attempts or not _retryable(exc):
                        raise
                    # botocore's standard mode: full jitter, base 2, at most 20 s
                    time.sleep(random.uniform(0, min(20.0, 2.0 ** (attempt - 1))))
                    continue
                return _to_machine(reply["Instances"][0])
        raise AssertionError("unreachable")

    def _run_arguments(self, spec: MachineSpec, token: str) -> dict[str, Any]:
        tags = {**spec.tags, "Name": spec.name}
        if token:
            tags[TOKEN_TAG] = token
        tag_list = [{"Key": k, "Value": v} for k, v in tags.items()]
        kwargs: dict[str, Any] = {
            "ImageId": spec.image_id,
            "InstanceType": spec.flavor,
            "MinCount": 1,
            "MaxCount": 1,
            "UserData": spec.user_data,
            "TagSpecifications": [
                {"ResourceType": "instance", "Tags": tag_list},
                {"ResourceType": "volume", "Tags": tag_list},
            ],
        }
        if token:
            kwargs["ClientToken"] = token
        if spec.security_groups:
            kwargs["SecurityGroupIds"] = [self._group_id(name) for name in spec.security_groups]
        if self.subnet_id:
            kwargs["SubnetId"] = self.subnet_id
        if spec.disk_gb is not None:
            kwargs["BlockDeviceMappings"] = self._root_disk(spec.image_id, spec.disk_gb)
        return kwargs

    def _root_disk(self, image_id: str, disk_gb: float) -> list[Any]:
        root, snapshot_gb = self._root_device(image_id)
        size = max(snapshot_gb, int(-(-disk_gb // 1)))
        return [{"DeviceName": root, "Ebs": {"VolumeSize": size, "DeleteOnTermination": True}}]

    def _root_device(self, image_id: str) -> tuple[str, int]:
        """The AMI's root device and its snapshot's size (GB); an AMI never changes."""
        with self._lock:
            known = self._root_devices.get(image_id)
        if known is not None:
            return known
        images = self.client.describe_images(ImageIds=[image_id])["Images"]
        if not images:
            raise CloudError(f"image {image_id} does not exist", cloud=self.cloud)
        image = images[0]
        root = image.get("RootDeviceName", "/dev/xvda")
        snapshot_gb = 0
        for mapping in image.get("BlockDeviceMappings", []):
            if mapping.get("DeviceName") == root:
                snapshot_gb = mapping.get("Ebs", {}).get("VolumeSize", 0)
        with self._lock:
            self._root_devices[image_id] = (root, snapshot_gb)
        return root, snapshot_gb

    def get_machine(self, machine_id: str) -> Machine:
        with translated(self.cloud, f"machine {machine_id}"):
            for instance in self._instances([], ids=[machine_id]):
                return _to_machine(instance)
        raise NotFound(f"{self.cloud}: machine {machine_id} does not exist")

    def delete_machine(self, machine_id: str) -> None:
        try:
            with translated(self.cloud, f"delete machine {machine_id}"):
                self.client.terminate_instances(InstanceIds=[machine_id])
        except NotFound:
            return

    def list_machines(self, tags: Mapping[str, str]) -> list[Machine]:
        filters: list[Any] = [{"Name": "instance-state-name", "Values": _LIVE_STATES}]
        filters += [{"Name": f"tag:{k}", "Values": [v]} for k, v in tags.items()]
        if not tags:
            filters.append({"Name": "tag-key", "Values": [RUN_TAG]})
        with translated(self.cloud, "list machines"):
            return [_to_machine(i) for i in self._instances(filters)]

    def console_log(self, machine_id: str, lines: int = 100) -> str:
        with translated(self.cloud, f"console of {machine_id}"):
            output = self.client.get_console_output(InstanceId=machine_id).get("Output", "")
        return "\n".join(output.replace("\r", "").splitlines()[-lines:])

    # -- catalog and images --------------------------------------------------------

    def check(self) -> None:
        """``DescribeAvailabilityZones``: signed, one page, no side effects."""
        with translated(self.cloud, "check the credentials"):
            self.client.describe_availability_zones()

    def flavors(self) -> list[Flavor]:
        """Every instance type the region offers (``describe_instance_types``);
        ``disk`` is the instance store size in GB, ``None`` for EBS-only types."""
        result = []
        with translated(self.cloud, "list instance types"):
            for page in self.client.get_paginator("describe_instance_types").paginate():
                for t in page["InstanceTypes"]:
                    storage = t.get("InstanceStorageInfo", {}).get("TotalSizeInGB")
                    result.append(
                        Flavor(
                            name=t["InstanceType"],
                            cpu=t.get("VCpuInfo", {}).get("DefaultVCpus", 0),
                            ram=t.get("MemoryInfo", {}).get("SizeInMiB", 0) / 1024,
                            disk=float(storage) if storage else None,
                        )
                    )
        return sorted(result, key=lambda f: (f.cpu, f.ram, f.name))

    def images(self) -> list[CloudImage]:
        """The account's own AMIs, hidden (deprecated) ones left out."""
        with translated(self.cloud, "list images"):
            images = self.client.describe_images(Owners=["self"])["Images"]
        listed = [_images.to_cloud_image(i) for i in images]
        return [i for i in listed if not i.hidden]

    def upload_image(self, path: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        """An AMI on a snapshot written through the EBS direct APIs, tagged
        with ``properties`` from its registration (see ``_images``)."""
        if self.ebs_client is None:
            raise CloudError("upload image: no EBS client was configured", cloud=self.cloud)
        with translated(self.cloud, f"upload image {name}"):
            return _images.upload(
                self.cloud, self.client, self.ebs_client, path, name, properties,
                timeout_s=self.image_timeout_s, poll_s=self.image_poll_s,
            )  # fmt: skip

    def stream_image(
        self, stream: ImageStream, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_STREAMING], cloud=self.cloud)

    def register_image(
        self, source: ImageSource, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_FROM_URL], cloud=self.cloud)

    def find_images(self, properties: Mapping[str, str]) -> list[CloudImage]:
        with translated(self.cloud, "find images"):
            return _images.find(self.client, properties)

    def share_image(self, image_id: str, project: str) -> None:
        with translated(self.cloud, f"share image {image_id} with account {project}"):
            _images.share(self.client, image_id, project)

    def hide_image(self, image_id: str) -> None:
        """Tag the AMI ``slipway-hidden`` and deprecate it: EC2 then leaves it
        out of ``DescribeImages`` unless ``IncludeDeprecated`` is asked for,
        while it can still be described and launched by its id."""
        with translated(self.cloud, f"hide image {image_id}"):
            _images.hide(self.client, image_id)

    def delete_image(self, image_id: str) -> None:
        """Deregister the AMI and delete its snapshots; a ``snap-`` id (an
        upload that stopped before its AMI) deletes that snapshot."""
        with translated(self.cloud, f"delete image {image_id}"):
            _images.delete(self.client, image_id)

    def image_users(self, image_id: str) -> list[str]:
        """Instances started from the AMI that are not terminated."""
        filters: list[Any] = [
            {"Name": "image-id", "Values": [image_id]},
            {"Name": "instance-state-name", "Values": _LIVE_STATES},
        ]
        with translated(self.cloud, f"list the instances of image {image_id}"):
            return [i["InstanceId"] for i in self._instances(filters)]

    # -- security groups -------------------------------------------------------------

    def _find_group(self, name: str) -> Any | None:
        filters = [{"Name": "group-name", "Values": [name]}]
        groups = self.client.describe_security_groups(Filters=filters)["SecurityGroups"]  # type: ignore[arg-type]
        return groups[0] if groups else None

    def _group_id(self, name: str) -> str:
        with self._lock:
            ensured = self._ensured.get(name)
        if ensured is not None and time.monotonic() - ensured[0] < ENSURED_FOR_S:
            return ensured[2]
        group = self._find_group(name)
        if group is None:
            raise CloudError(f"security group {name} does not exist", cloud=self.cloud)
        return str(group["GroupId"])

    def check_security_group(self, name: str) -> SecurityGroup | None:
        with translated(self.cloud, f"security group {name}"):
            group = self._find_group(name)
        if group is None:
            return None
        return SecurityGroup(
            name, tuple(_to_rules(group.get("IpPermissions", []))), group["GroupId"]
        )

    def ensure_security_group(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        """Create the group if missing, authorise missing rules, revoke extra ones.

        Runs deployed at the same time ensure the same group at the same time:
        when another one created the group or changed a rule between our read
        and our write, EC2 says so (``InvalidGroup.Duplicate``,
        ``InvalidPermission.Duplicate`` / ``.NotFound``) and we read again."""
        import botocore.exceptions as bx

        for rule in rules:
            problems = rule.problems()
            if problems:
                raise InputError(f"security group {name}: {'; '.join(problems)}")
        wanted = list(dict.fromkeys(rules))
        with self._lock:
            ensured = self._ensured.get(name)
        if (
            ensured is not None
            and time.monotonic() - ensured[0] < ENSURED_FOR_S
            and set(ensured[1]) == set(wanted)
        ):
            return SecurityGroup(name, tuple(wanted), ensured[2])
        with translated(self.cloud, f"security group {name}"):
            for attempt in range(1, _GROUP_RACE_ATTEMPTS + 1):
                try:
                    group = self._bring_group_to(name, wanted)
                    with self._lock:
                        self._ensured[name] = (time.monotonic(), group.rules, group.id)
                    return group
                except bx.ClientError as exc:
                    code = exc.response.get("Error", {}).get("Code")
                    if code not in _GROUP_RACES or attempt == _GROUP_RACE_ATTEMPTS:
                        raise
        raise AssertionError("unreachable")

    def _bring_group_to(self, name: str, wanted: list[Rule]) -> SecurityGroup:
        group = self._find_group(name)
        if group is None:
            group_id = self.client.create_security_group(
                GroupName=name,
                Description=f"Managed by Slipway: {name}",
                TagSpecifications=[{"ResourceType": "security-group",
                                    "Tags": [{"Key": GROUP_TAG, "Value": "true"}]}],
            )["GroupId"]  # fmt: skip
            current: list[Rule] = []
        elif _tags(group.get("Tags")).get(GROUP_TAG) != "true":
            raise CloudError(
                f"security group {name} was not made by Slipway, which leaves it as it is",
                cloud=self.cloud,
                hint="rename or delete that group, or declare yours under another name",
            )
        else:
            group_id = group["GroupId"]
            current = _to_rules(group.get("IpPermissions", []))
        missing = [r for r in wanted if r not in current]
        extra = [r for r in current if r not in wanted]
        if missing:
            self.client.authorize_security_group_ingress(
                GroupId=group_id, IpPermissions=[_to_permission(r) for r in missing]
            )
        if extra:
            self.client.revoke_security_group_ingress(
                GroupId=group_id, IpPermissions=[_to_permission(r) for r in extra]
            )
        return SecurityGroup(name, tuple(wanted), group_id)
