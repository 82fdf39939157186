"""OpenStack through openstacksdk: Nova servers, Glance images, Neutron groups.

Idempotency: every server carries the run's tags and the client token in its
metadata. Nova has no client token of its own, so ``create_machine`` looks the
token up before every attempt but a first one, and retries a create that met
a 5xx, a 429 or a network failure itself (keystoneauth retries none of these
for a POST): a lost answer to a create that succeeded finds the first server.

Nothing here waits with openstacksdk's ``wait_for_*`` (a 5 s poll): the runner
polls ``get_machine`` at its own pace, and an upload polls Glance itself.
"""

from __future__ import annotations

import base64
import hashlib
import random
import re
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slipway.connectors.limits import limits_of
from slipway.connectors.openstack._errors import retryable, translated
from slipway.connectors.openstack._groups import SecurityGroups
from slipway.connectors.openstack._images import (
    find,
    glance,
    hide,
    share,
    to_cloud_image,
    upload,
    upload_stream,
    users,
)
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
from slipway.errors import CloudError, Unsupported

if TYPE_CHECKING:
    from openstack.compute.v2.server import Server
    from openstack.connection import Connection

__all__ = ["NOVA_STATES", "TOKEN_KEY", "OpenStackConnector", "reachable_address"]

# Nova server status -> ours. Translated here and nowhere else.
NOVA_STATES: dict[str, MachineState] = {
    "BUILD": MachineState.PENDING,
    "REBUILD": MachineState.PENDING,
    "REBOOT": MachineState.PENDING,
    "HARD_REBOOT": MachineState.PENDING,
    "ACTIVE": MachineState.RUNNING,
    "MIGRATING": MachineState.RUNNING,
    "RESIZE": MachineState.RUNNING,
    "VERIFY_RESIZE": MachineState.RUNNING,
    "PASSWORD": MachineState.RUNNING,
    "SHUTOFF": MachineState.STOPPED,
    "STOPPED": MachineState.STOPPED,
    "PAUSED": MachineState.STOPPED,
    "SUSPENDED": MachineState.STOPPED,
    "SHELVED": MachineState.STOPPED,
    "SHELVED_OFFLOADED": MachineState.STOPPED,
    "RESCUE": MachineState.STOPPED,
    "ERROR": MachineState.ERROR,
    "DELETED": MachineState.TERMINATED,
    "SOFT_DELETED": MachineState.TERMINATED,
}
TOKEN_KEY = "slipway-token"
"""Metadata key holding the client token of the create that made the server."""
_METADATA_MAX = 255  # characters of a Nova metadata value


def _token(token: str) -> str:
    """Nova keeps at most 255 characters per metadata value; longer tokens are hashed."""
    return token if len(token) <= _METADATA_MAX else hashlib.sha256(token.encode()).hexdigest()


def reachable_address(addresses: Mapping[str, Sequence[Mapping[str, Any]]]) -> str | None:
    """Where SSH reaches the server: a floating IPv4 first, then a fixed IPv4,
    then IPv6 likewise. ``addresses`` is Nova's ``{network: [{addr, version,
    OS-EXT-IPS:type}]}``."""
    ranked: list[tuple[int, str]] = []
    for entries in addresses.values():
        for entry in entries:
            floating = entry.get("OS-EXT-IPS:type") == "floating"
            ipv6 = entry.get("version") == 6
            ranked.append((2 * ipv6 + (not floating), str(entry["addr"])))
    return min(ranked)[1] if ranked else None


def _flavor_name(server: Server) -> str:
    flavor = server.flavor
    if flavor is None:
        return ""
    # Since microversion 2.47 a server shows its flavor's name, not its id.
    return str(getattr(flavor, "original_name", None) or flavor.name or flavor.id or "")


def _to_machine(server: Server) -> Machine:
    # Nova's answer to a create holds no status: the server is being built.
    state = NOVA_STATES.get(str(server.status or "BUILD"), MachineState.UNKNOWN)
    if server.task_state == "deleting":
        state = MachineState.TERMINATED
    metadata = dict(server.metadata or {})
    fault = server.fault or {}
    image = server.image
    running = state is MachineState.RUNNING
    return Machine(
        id=str(server.id),
        name=str(server.name),
        state=state,
        address=reachable_address(server.addresses or {}) if running else None,
        ssh_port=22,
        tags={k: v for k, v in metadata.items() if k != TOKEN_KEY},
        image_id=str(image.id) if image is not None and image.id else "",
        flavor=_flavor_name(server),
        cloud_message=str(fault.get("message", "")) if state is MachineState.ERROR else "",
    )


class OpenStackConnector:
    """One OpenStack project in one region. ``connection`` is an
    ``openstack.connection.Connection`` (see ``connect``)."""

    def __init__(
        self,
        cloud: str,
        connection: Connection,
        *,
        network: str | None = None,
        create_attempts: int = 4,
    ) -> None:
        self.cloud = cloud
        self.connection = connection
        self.network = network
        self.create_attempts = create_attempts
        self.groups = SecurityGroups(cloud, connection)
        self._flavor_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self.unsupported: Mapping[Capability, str] = limits_of("openstack")

    def check(self) -> None:
        """A Keystone token for the project and Nova's answer to one page of
        flavors: credentials, catalog and compute proven in two calls."""
        with translated(self.cloud, "check the credentials"):
            self.connection.authorize()
            next(iter(self.connection.compute.flavors(details=False, limit=1)), None)

    # -- machines ----------------------------------------------------------------

    def _servers(self, name: str | None = None) -> Iterator[Server]:
        query: dict[str, Any] = {}
        if name and re.fullmatch(r"[\w.-]+", name):
            query["name"] = f"^{name}$"  # Nova matches names as regular expressions
        yield from self.connection.compute.servers(details=True, **query)

    def _by_token(self, name: str, token: str) -> Machine | None:
        for server in self._servers(name):
            machine = _to_machine(server)
            if (server.metadata or {}).get(TOKEN_KEY) == token and not machine.state.is_gone:
                return machine
        return None

    def create_machine(self, spec: MachineSpec) -> Machine:
        token = _token(spec.client_token) if spec.client_token else ""
        with translated(self.cloud, "create machine"):
            attrs = self._server_attributes(spec, token)
            for attempt in range(1, self.create_attempts + 1):
                if token and (attempt > 1 or not spec.first_attempt):
                    existing = self._by_token(spec.name, token)
                    if existing is not None:
                        return existing
                try:
                    return _to_machine(self.connection.compute.create_server(**attrs))
                except Exception as exc:
                    if not token or attempt == self.create_attempts or not retryable(exc):
                        raise
                    time.sleep(random.uniform(0, min(20.0, 2.0 ** (attempt - 1))))
        raise AssertionError("unreachable")

    def _server_attributes(self, spec: MachineSpec, token: str) -> dict[str, Any]:
        metadata = {**spec.tags}
        if token:
            metadata[TOKEN_KEY] = token
        attrs: dict[str, Any] = {
            "name": spec.name,
            "image_id": spec.image_id,
            "flavor_id": self._flavor_id(spec.flavor),
            "metadata": metadata,
            "user_data": base64.b64encode(spec.user_data.encode()).decode(),
            "networks": self._networks(),
        }
        if spec.security_groups:
            attrs["security_groups"] = [
                {"name": self.groups.id_of(name)} for name in spec.security_groups
            ]
        return attrs

    def _networks(self) -> str | list[dict[str, str]]:
        if not self.network:
            return "auto"  # the one network the project sees
        network = self.connection.network.find_network(self.network, ignore_missing=True)
        if network is None:
            raise CloudError(f"network {self.network} does not exist", cloud=self.cloud)
        return [{"uuid": str(network.id)}]

    def _flavor_id(self, name: str) -> str:
        with self._lock:
            known = self._flavor_ids.get(name)
        if known is not None:
            return known
        flavor = self.connection.compute.find_flavor(name, ignore_missing=True)
        if flavor is None:
            raise CloudError(f"flavor {name} does not exist", cloud=self.cloud,
                             hint="refresh the cloud's catalog: slipway sizes refresh")  # fmt: skip
        with self._lock:
            self._flavor_ids[name] = str(flavor.id)
        return str(flavor.id)

    def get_machine(self, machine_id: str) -> Machine:
        with translated(self.cloud, f"machine {machine_id}"):
            return _to_machine(self.connection.compute.get_server(machine_id))

    def delete_machine(self, machine_id: str) -> None:
        """Nova deletes the ports it made for the server with it; Slipway makes
        no other resource for one server."""
        with translated(self.cloud, f"delete machine {machine_id}"):
            self.connection.compute.delete_server(machine_id, ignore_missing=True)

    def list_machines(self, tags: Mapping[str, str]) -> list[Machine]:
        with translated(self.cloud, "list machines"):
            machines = [_to_machine(s) for s in self._servers()]
        wanted = dict(tags)
        return [
            m
            for m in machines
            if not m.state.is_gone
            and (wanted.items() <= m.tags.items() if wanted else RUN_TAG in m.tags)
        ]

    def console_log(self, machine_id: str, lines: int = 100) -> str:
        with translated(self.cloud, f"console of {machine_id}"):
            reply = self.connection.compute.get_server_console_output(machine_id, length=lines)
        output = str(reply.get("output") or "")
        return "\n".join(output.replace("\r", "").splitlines()[-lines:])

    # -- catalog and images --------------------------------------------------------

    def flavors(self) -> list[Flavor]:
        """Every flavor the project may use; ``ram`` in GB, ``disk`` the root
        disk in GB (``None`` for a flavor whose disk is the image's size)."""
        with translated(self.cloud, "list flavors"):
            found = [
                Flavor(
                    name=str(f.name),
                    cpu=int(f.vcpus or 0),
                    ram=int(f.ram or 0) / 1024,
                    disk=float(f.disk) if f.disk else None,
                )
                for f in self.connection.compute.flavors(details=True)
            ]
        return sorted(found, key=lambda f: (f.cpu, f.ram, f.name))

    def images(self) -> list[CloudImage]:
        """Images the project may boot: its own, shared, community and public
        ones; hidden ones (an upload not yet verified) are left out."""
        with translated(self.cloud, "list images"):
            return [to_cloud_image(i) for i in glance(self.connection).images()]

    def upload_image(self, path: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        return upload(self.cloud, self.connection, path, name, properties)

    def stream_image(
        self, stream: ImageStream, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        return upload_stream(self.cloud, self.connection, stream, name, properties)

    def register_image(
        self, source: ImageSource, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_FROM_URL], cloud=self.cloud)

    def find_images(self, properties: Mapping[str, str]) -> list[CloudImage]:
        with translated(self.cloud, "find images"):
            return find(self.connection, properties)

    def share_image(self, image_id: str, project: str) -> None:
        with translated(self.cloud, f"share image {image_id} with project {project}"):
            share(self.connection, image_id, project)

    def hide_image(self, image_id: str) -> None:
        with translated(self.cloud, f"hide image {image_id}"):
            hide(self.connection, image_id)

    def delete_image(self, image_id: str) -> None:
        with translated(self.cloud, f"delete image {image_id}"):
            glance(self.connection).delete_image(image_id, ignore_missing=True)

    def image_users(self, image_id: str) -> list[str]:
        with translated(self.cloud, f"list the servers of image {image_id}"):
            return users(self.connection, image_id)

    # -- security groups -------------------------------------------------------------

    def ensure_security_group(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        return self.groups.ensure(name, rules)

    def check_security_group(self, name: str) -> SecurityGroup | None:
        return self.groups.check(name)
