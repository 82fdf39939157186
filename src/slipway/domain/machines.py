"""What a cloud runs for us: machine specs and machines, in our own words.

Connectors translate their provider's states and JSON into these at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

__all__ = ["Capability", "Machine", "MachineSpec", "MachineState", "PortForward", "Rule"]


class MachineState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    TERMINATED = "terminated"
    ERROR = "error"
    UNKNOWN = "unknown"


class Capability(StrEnum):
    """Things a cloud may or may not be able to do; connectors declare the gaps."""

    SECURITY_GROUPS = "security_groups"
    IMAGE_UPLOAD = "image_upload"
    CONSOLE_LOG = "console_log"
    CLIENT_TOKEN = "client_token"


@dataclass(frozen=True)
class Rule:
    """One ingress rule: protocol, a port or range ("22", "8000-8080"), a source CIDR."""

    protocol: str
    ports: str
    source: str = "0.0.0.0/0"

    @property
    def port_range(self) -> tuple[int, int]:
        low, _, high = self.ports.partition("-")
        return int(low), int(high or low)


@dataclass(frozen=True)
class PortForward:
    """A guest port reachable at host:port (the local cloud's way of ingress)."""

    guest_port: int
    host: str
    host_port: int


@dataclass(frozen=True)
class MachineSpec:
    """Everything a connector needs to create one machine."""

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


@dataclass(frozen=True)
class Machine:
    id: str
    name: str
    state: MachineState
    address: str | None = None
    ssh_port: int = 22
    forwards: tuple[PortForward, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    cloud_message: str = ""
