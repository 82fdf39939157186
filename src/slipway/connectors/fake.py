"""An in-memory cloud that keeps the connector contract, for tests of the core.

It behaves like a slow, sometimes failing cloud on request: machines stay
``pending`` for ``boot_polls`` reads before they run and get an address, and
``fail_next`` makes the next call of a method raise the given error.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from slipway.domain.machines import (
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
from slipway.errors import CloudError, NotFound, Unsupported

__all__ = ["FakeConnector"]

_DEFAULT_FLAVORS = (
    Flavor("tiny", 1, 1.0),
    Flavor("small", 2, 2.0),
    Flavor("medium", 2, 4.0),
    Flavor("large", 4, 8.0),
)


@dataclass
class _Record:
    machine: Machine
    spec: MachineSpec
    polls_left: int
    console: list[str] = field(default_factory=list)


class FakeConnector:
    """A cloud held in memory. Thread-safe, so concurrent workers can share one."""

    def __init__(
        self,
        cloud: str = "fake",
        *,
        flavors: Sequence[Flavor] = _DEFAULT_FLAVORS,
        images: Sequence[CloudImage] = (CloudImage("img-debian-12", "debian-12"),),
        unsupported: Mapping[Capability, str] | None = None,
        boot_polls: int = 0,
    ) -> None:
        self.cloud = cloud
        self.unsupported: Mapping[Capability, str] = dict(unsupported or {})
        self.boot_polls = boot_polls
        self.fail_next: dict[str, Exception] = {}
        self.calls: list[str] = []
        self._flavors = list(flavors)
        self._images = {i.id: i for i in images}
        self.shared: dict[str, set[str]] = {}  # image id -> projects it is shared with
        self._groups: dict[str, SecurityGroup] = {}
        self._foreign: set[str] = set()  # groups made by someone other than Slipway
        self._machines: dict[str, _Record] = {}
        self._by_token: dict[str, str] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- helpers -------------------------------------------------------------

    def _enter(self, method: str) -> None:
        self.calls.append(method)
        error = self.fail_next.pop(method, None)
        if error is not None:
            raise error

    def _advance(self, record: _Record) -> Machine:
        if record.machine.state is MachineState.PENDING:
            if record.polls_left > 0:
                record.polls_left -= 1
            else:
                number = record.machine.id.rsplit("-", 1)[-1]
                record.machine = replace(
                    record.machine, state=MachineState.RUNNING, address=f"192.0.2.{number}"
                )
                record.console.append(f"{record.machine.name} login:")
        return record.machine

    # -- the port --------------------------------------------------------------

    def create_machine(self, spec: MachineSpec) -> Machine:
        with self._lock:
            self._enter("create_machine")
            if spec.client_token and spec.client_token in self._by_token:
                return self._machines[self._by_token[spec.client_token]].machine
            if spec.image_id not in self._images:
                raise CloudError(f"image {spec.image_id} does not exist", cloud=self.cloud)
            missing = [g for g in spec.security_groups if g not in self._groups]
            if Capability.SECURITY_GROUPS not in self.unsupported and missing:
                raise CloudError(f"security group {missing[0]} does not exist", cloud=self.cloud)
            machine = Machine(
                id=f"fake-{next(self._ids)}",
                name=spec.name,
                state=MachineState.PENDING,
                tags=dict(spec.tags),
                image_id=spec.image_id,
                flavor=spec.flavor,
            )
            self._machines[machine.id] = _Record(machine, spec, self.boot_polls)
            if spec.client_token:
                self._by_token[spec.client_token] = machine.id
            return machine

    def get_machine(self, machine_id: str) -> Machine:
        with self._lock:
            self._enter("get_machine")
            record = self._machines.get(machine_id)
            if record is None:
                raise NotFound(f"{self.cloud}: machine {machine_id} does not exist")
            return self._advance(record)

    def delete_machine(self, machine_id: str) -> None:
        with self._lock:
            self._enter("delete_machine")
            record = self._machines.pop(machine_id, None)
            if record is not None and record.spec.client_token:
                self._by_token.pop(record.spec.client_token, None)

    def check(self) -> None:
        with self._lock:
            self._enter("check")

    def list_machines(self, tags: Mapping[str, str]) -> list[Machine]:
        with self._lock:
            self._enter("list_machines")
            return [
                r.machine
                for r in self._machines.values()
                if all(r.machine.tags.get(k) == v for k, v in tags.items())
            ]

    def flavors(self) -> list[Flavor]:
        self._enter("flavors")
        return list(self._flavors)

    def images(self) -> list[CloudImage]:
        self._enter("images")
        return [i for i in self._images.values() if not i.hidden]

    def ensure_security_group(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        with self._lock:
            self._enter("ensure_security_group")
            if name in self._foreign:
                raise CloudError(
                    f"security group {name} was not made by Slipway, which leaves it as it is",
                    cloud=self.cloud,
                )
            group = SecurityGroup(name, tuple(dict.fromkeys(rules)), id=f"sg-{name}")
            self._groups[name] = group
            return group

    def check_security_group(self, name: str) -> SecurityGroup | None:
        self._enter("check_security_group")
        return self._groups.get(name)

    def upload_image(self, path: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        with self._lock:
            self._enter("upload_image")
            if not path.is_file():
                raise NotFound(f"image file {path} does not exist")
            image = CloudImage(f"img-{next(self._ids)}", name, dict(properties))
            self._images[image.id] = image
            self.shared[image.id] = set()
            return image

    def stream_image(
        self, stream: ImageStream, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        """Reads the stream to its end, as a cloud receiving it would; a
        stream that fails leaves nothing."""
        with self._lock:
            self._enter("stream_image")
        reason = self.unsupported.get(Capability.IMAGE_STREAMING)
        if reason is not None:
            raise Unsupported(reason, cloud=self.cloud)
        digest, size = hashlib.sha512(), 0
        reader = stream.open()
        try:
            while chunk := reader.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        finally:
            reader.close()
        if (size, digest.hexdigest()) != (stream.size, stream.sha512):
            raise CloudError(f"upload image {name}: the bytes are not the file's", cloud=self.cloud)
        with self._lock:
            image = CloudImage(f"img-{next(self._ids)}", name, dict(properties))
            self._images[image.id] = image
            self.shared[image.id] = set()
            return image

    def register_image(
        self, source: ImageSource, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        with self._lock:
            self._enter("register_image")
            reason = self.unsupported.get(Capability.IMAGE_FROM_URL)
            if reason is not None:
                raise Unsupported(reason, cloud=self.cloud)
            image = CloudImage(f"img-{next(self._ids)}", name, {**properties, "url": source.url})
            self._images[image.id] = image
            self.shared[image.id] = set()
            return image

    def find_images(self, properties: Mapping[str, str]) -> list[CloudImage]:
        with self._lock:
            self._enter("find_images")
            return [
                i
                for i in self._images.values()
                if all(i.properties.get(k) == v for k, v in properties.items())
            ]

    def share_image(self, image_id: str, project: str) -> None:
        with self._lock:
            self._enter("share_image")
            reason = self.unsupported.get(Capability.IMAGE_SHARING)
            if reason is not None:
                raise Unsupported(reason, cloud=self.cloud)
            if image_id not in self._images:
                raise NotFound(f"{self.cloud}: image {image_id} does not exist")
            self.shared.setdefault(image_id, set()).add(project)

    def hide_image(self, image_id: str) -> None:
        with self._lock:
            self._enter("hide_image")
            image = self._images.get(image_id)
            if image is None:
                raise NotFound(f"{self.cloud}: image {image_id} does not exist")
            self._images[image_id] = replace(image, hidden=True)

    def delete_image(self, image_id: str) -> None:
        with self._lock:
            self._enter("delete_image")
            self._images.pop(image_id, None)
            self.shared.pop(image_id, None)

    def image_users(self, image_id: str) -> list[str]:
        with self._lock:
            self._enter("image_users")
            return [r.machine.id for r in self._machines.values() if r.spec.image_id == image_id]

    def console_log(self, machine_id: str, lines: int = 100) -> str:
        with self._lock:
            self._enter("console_log")
            record = self._machines.get(machine_id)
            if record is None:
                raise NotFound(f"{self.cloud}: machine {machine_id} does not exist")
            return "\n".join(record.console[-lines:])

    # -- test controls -----------------------------------------------------------

    def add_foreign_group(self, name: str, rules: Sequence[Rule]) -> None:
        """A group someone made on the cloud by hand, outside Slipway."""
        with self._lock:
            self._groups[name] = SecurityGroup(name, tuple(rules), id=f"sg-{name}")
            self._foreign.add(name)

    def spec_of(self, machine_id: str) -> MachineSpec:
        """What the machine was created from (its groups, tags …)."""
        return self._machines[machine_id].spec

    def set_console(self, machine_id: str, text: str) -> None:
        self._machines[machine_id].console = text.splitlines()

    def fail_machine(self, machine_id: str, message: str) -> None:
        """Put a machine in ``error`` with the cloud's ``message``, as a cloud would."""
        record = self._machines[machine_id]
        record.machine = replace(record.machine, state=MachineState.ERROR, cloud_message=message)
