"""The connector port: what Slipway asks of any cloud, in about ten methods.

Every connector (``local``, ``ec2``, the in-memory fake …) implements
:class:`Connector`. Connectors speak only in the values of
:mod:`slipway.domain.machines` and :mod:`slipway.domain.sizes`: provider states
and JSON are translated inside the connector, and provider errors become
:class:`~slipway.errors.CloudError` (with the cloud's own message) or
:class:`~slipway.errors.NotFound`.

What a connector cannot do is declared up front in ``unsupported`` (capability
→ reason); the core calls :func:`require` before acting instead of finding out
half-way through a deploy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

from slipway.domain.machines import (
    Capability,
    CloudImage,
    ImageSource,
    ImageStream,
    Machine,
    MachineSpec,
    Rule,
    SecurityGroup,
)
from slipway.domain.sizes import Flavor
from slipway.errors import Unsupported

__all__ = ["Connector", "require", "supports"]


@runtime_checkable
class Connector(Protocol):
    """One cloud, as Slipway sees it.

    ``cloud`` is the cloud's name (``exoscale-ch-gva``), used in messages.
    ``unsupported`` maps each capability the cloud lacks to the reason, in
    words a user can act on.
    """

    cloud: str
    unsupported: Mapping[Capability, str]

    def check(self) -> None:
        """One cheap call proving the cloud answers and accepts the
        credentials; a ``CloudError`` quoting the cloud otherwise. A deploy
        calls it before it records a run."""
        ...

    def create_machine(self, spec: MachineSpec) -> Machine:
        """Start a machine, or return the one already started for
        ``spec.client_token`` (idempotent). Returns at once, usually ``pending``."""
        ...

    def get_machine(self, machine_id: str) -> Machine:
        """The machine as the cloud sees it now. Raises ``NotFound`` when the
        cloud no longer knows it; may return ``terminated`` while it still does."""
        ...

    def delete_machine(self, machine_id: str) -> None:
        """Delete the machine and what it alone uses (disk, overlay …).
        Deleting a machine that is already gone is not an error."""
        ...

    def list_machines(self, tags: Mapping[str, str]) -> list[Machine]:
        """Every machine carrying all of ``tags`` (an empty mapping: every
        machine Slipway created in this cloud). Terminated machines excluded."""
        ...

    def flavors(self) -> list[Flavor]:
        """The flavors the cloud sells now: the source of an explicit catalog
        refresh, never called on the deploy path."""
        ...

    def images(self) -> list[CloudImage]:
        """The images a machine can be created from."""
        ...

    def ensure_security_group(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        """Create the group or bring its ingress rules to exactly ``rules``.
        A group of that name that Slipway did not create is never changed:
        that is a ``CloudError``."""
        ...

    def check_security_group(self, name: str) -> SecurityGroup | None:
        """The group as the cloud holds it, or ``None`` when it does not exist."""
        ...

    def upload_image(self, path: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        """Upload a qcow2 image file (``Capability.IMAGE_UPLOAD``). ``properties``
        become the image's metadata before anyone can see it; the image shows
        only once the cloud holds exactly the file's bytes, and a failed
        upload deletes what it created."""
        ...

    def stream_image(
        self, stream: ImageStream, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        """Upload a qcow2 file as it downloads (``Capability.IMAGE_STREAMING``):
        the same promises as ``upload_image``; a stream that fails fails the
        upload, and nothing of it stays."""
        ...

    def register_image(
        self, source: ImageSource, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        """Have the cloud fetch ``source`` itself and keep it as image ``name``
        (``Capability.IMAGE_FROM_URL``); the same promises as ``upload_image``."""
        ...

    def find_images(self, properties: Mapping[str, str]) -> list[CloudImage]:
        """Every image of this account carrying all of ``properties``, hidden
        and unfinished ones included (``ready`` and ``hidden`` say which):
        how a sync finds what an interrupted run left behind."""
        ...

    def share_image(self, image_id: str, project: str) -> None:
        """Let ``project`` (an OpenStack project id, an AWS account id) start
        machines from the image (``Capability.IMAGE_SHARING``). Idempotent."""
        ...

    def hide_image(self, image_id: str) -> None:
        """Deprecate the image: left out of ``images()`` and of the lists users
        choose from, while machines already using it keep running."""
        ...

    def delete_image(self, image_id: str) -> None:
        """Delete the image. Deleting an image that is already gone is not an error."""
        ...

    def image_users(self, image_id: str) -> list[str]:
        """The ids of the machines on this cloud started from the image, as
        far as the credentials can see (not only the ones Slipway made)."""
        ...

    def console_log(self, machine_id: str, lines: int = 100) -> str:
        """The last ``lines`` lines of the machine's serial console."""
        ...


def supports(connector: Connector, capability: Capability) -> bool:
    return capability not in connector.unsupported


def require(connector: Connector, capability: Capability) -> None:
    """Raise :class:`Unsupported` with the connector's reason when it lacks
    ``capability``; the core calls this before acting."""
    reason = connector.unsupported.get(capability)
    if reason is not None:
        raise Unsupported(f"{capability.value.replace('_', ' ')}: {reason}", cloud=connector.cloud)
