"""What a cloud runs for us: machine specs and machines, in our own words.

Connectors translate their provider's states and JSON into these at the edge.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol

__all__ = [
    "RUN_TAG",
    "BootImage",
    "Capability",
    "CloudImage",
    "ImageSource",
    "Machine",
    "MachineSpec",
    "MachineState",
    "PortForward",
    "Rule",
    "SecurityGroup",
    "ingress_tcp_ports",
]

# Every resource Slipway creates carries the run id under this tag (DESIGN.md §6).
RUN_TAG = "slipway-run"


class MachineState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    TERMINATED = "terminated"
    ERROR = "error"
    UNKNOWN = "unknown"

    @property
    def is_gone(self) -> bool:
        """The machine is, or is on its way to being, deleted for good."""
        return self is MachineState.TERMINATED


class Capability(StrEnum):
    """Things a cloud may or may not be able to do; connectors declare the gaps."""

    SECURITY_GROUPS = "security_groups"
    IMAGE_UPLOAD = "image_upload"
    CONSOLE_LOG = "console_log"
    CLIENT_TOKEN = "client_token"
    FLAVOR_LISTING = "flavor_listing"
    IMAGE_FROM_URL = "image_from_url"
    IMAGE_SHARING = "image_sharing"
    IMAGE_STREAMING = "image_streaming"


@dataclass(frozen=True)
class Rule:
    """One ingress rule: protocol, a port or range ("22", "8000-8080"), a source CIDR.

    ``protocol`` is ``tcp``, ``udp``, ``icmp`` or ``all``; ``ports`` is empty for
    ``icmp`` and ``all``.
    """

    protocol: str
    ports: str = ""
    source: str = "0.0.0.0/0"

    @property
    def port_range(self) -> tuple[int, int]:
        """(first, last) port; (0, 65535) when the rule has no ports."""
        if not self.ports:
            return 0, 65535
        low, _, high = self.ports.partition("-")
        return int(low), int(high or low)

    def problems(self) -> list[str]:
        """What is wrong with this rule, in words; empty when it is valid."""
        found: list[str] = []
        if self.protocol not in ("tcp", "udp", "icmp", "all"):
            found.append(f"protocol must be tcp, udp, icmp or all, got {self.protocol!r}")
        if self.ports:
            try:
                low, high = self.port_range
            except ValueError:
                return [
                    *found,
                    f"ports must be a port or a range like 8000-8080, got {self.ports!r}",
                ]
            if not 0 <= low <= high <= 65535:
                found.append(f"ports must lie within 0-65535 and run upwards, got {self.ports!r}")
        if "/" not in self.source:
            found.append(f"source must be a CIDR like 0.0.0.0/0, got {self.source!r}")
        return found


@dataclass(frozen=True)
class SecurityGroup:
    """A named set of ingress rules as one cloud holds it."""

    name: str
    rules: tuple[Rule, ...]
    id: str = ""


def ingress_tcp_ports(groups: Iterable[SecurityGroup]) -> list[int]:
    """Every single TCP port the groups open, sorted; ranges wider than 16
    ports are skipped (forwarding them one by one would be absurd)."""
    ports: set[int] = set()
    for group in groups:
        for rule in group.rules:
            if rule.protocol not in ("tcp", "all") or not rule.ports:
                continue
            low, high = rule.port_range
            if high - low < 16:
                ports.update(range(low, high + 1))
    return sorted(ports)


@dataclass(frozen=True)
class PortForward:
    """A guest port reachable at host:port (the local cloud's way of ingress)."""

    guest_port: int
    host: str
    host_port: int


@dataclass(frozen=True)
class MachineSpec:
    """Everything a connector needs to create one machine.

    ``ram_gb`` and ``disk_gb`` in GB (``disk_gb`` ``None``: the image's own
    size); ``client_token`` makes creation idempotent: creating twice with the
    same token yields the same machine. ``first_attempt``: the caller knows
    that nothing can have been created with this token yet (no earlier
    attempt was made), so a connector may skip looking for such a machine.
    """

    name: str
    image_id: str
    flavor: str
    cpu: int
    ram_gb: float
    disk_gb: float | None
    user_data: str
    security_groups: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    client_token: str = ""
    first_attempt: bool = False

    @property
    def ram_mb(self) -> int:
        return round(self.ram_gb * 1024)


@dataclass(frozen=True)
class Machine:
    """One machine as a cloud reports it. ``address`` is where SSH and the
    service ports are reached, ``ssh_port`` the port SSH listens on there."""

    id: str
    name: str
    state: MachineState
    address: str | None = None
    ssh_port: int = 22
    forwards: tuple[PortForward, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    image_id: str = ""
    flavor: str = ""
    cloud_message: str = ""
    notices: tuple[str, ...] = ()
    """What the cloud did to the machine on its own (e.g. restarted it under
    another accelerator), oldest first; each becomes an event on the run."""

    def service_port(self, guest_port: int) -> int:
        """Where ``guest_port`` is reached on ``address``: its forward, if any."""
        for forward in self.forwards:
            if forward.guest_port == guest_port:
                return forward.host_port
        return guest_port


@dataclass(frozen=True)
class CloudImage:
    """An image as one cloud's image service lists it. ``ready``: the cloud
    holds all of its bytes and will boot it; ``hidden``: left out of the
    lists users choose from (not yet verified, or deprecated)."""

    id: str
    name: str
    properties: dict[str, str] = field(default_factory=dict)
    ready: bool = True
    hidden: bool = False


@dataclass(frozen=True)
class ImageSource:
    """A disk image the cloud fetches itself (``Capability.IMAGE_FROM_URL``):
    where, its size in bytes and the checksums the cloud checks it against
    (Exoscale wants the MD5), in lower-case hex; ``format`` e.g. ``qcow2``."""

    url: str
    size: int
    sha512: str
    md5: str
    format: str = "qcow2"


class ArrivingBytes(Protocol):
    """A reader of a file that may still be arriving: ``read`` waits for
    bytes and raises when the file will not be what was promised."""

    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ImageStream:
    """A qcow2 file to upload while it downloads (``Capability.IMAGE_STREAMING``):
    ``open()`` gives a reader whose end (EOF) comes only once the download
    matched ``size`` and ``sha512`` and the file was found to be a qcow2
    that reads nothing else; until then its last bytes are held back, so an
    upload can never finish on a file that fails its checks. ``path`` is
    where the whole file is once the reader has reached its end."""

    open: Callable[[], ArrivingBytes]
    size: int
    sha512: str
    path: Path


@dataclass(frozen=True)
class BootImage:
    """The image to boot: ``image_id`` as the local cloud knows it (a store
    name, or the absolute path of a qcow2 file), its virtual size in bytes,
    and ``label``, what the user called it."""

    image_id: str
    virtual_size: int
    label: str
