"""Exoscale compute through the official SDK's v2 client.

Instances start from templates (the native image id is the template's id)
with an instance type. A flavor names one as Exoscale's tools do,
``family.size`` (``standard.medium``), or by its size alone for the standard
family (``Medium``, as the tutorial's catalog has it), in any case; flavors are
listed in the second form for the standard family.

Idempotency: the v2 API has no client token, so every instance carries the
run's token as a label, and ``create_machine`` looks for a live instance with
that label before creating. ``create-instance`` is not retried blindly: after
a lost answer or a server error the label is looked up again first, so a
retried create returns the first instance.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from slipway.connectors.exoscale._api import ExoscaleApi
from slipway.connectors.exoscale._errors import is_transient, translated
from slipway.connectors.exoscale._rules import (
    MANAGED_MARK,
    is_managed,
    to_body,
    to_rules,
    wanted_rules,
)
from slipway.connectors.exoscale._templates import (
    hidden_update,
    is_hidden,
    register_body,
    to_cloud_image,
)
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

__all__ = ["EXOSCALE_STATES", "TOKEN_LABEL", "ExoscaleConnector"]

# Exoscale instance state -> ours. Translated here and nowhere else.
EXOSCALE_STATES: dict[str, MachineState] = {
    "starting": MachineState.PENDING,
    "running": MachineState.RUNNING,
    "migrating": MachineState.RUNNING,  # a live migration: the guest runs on
    "stopping": MachineState.STOPPING,
    "stopped": MachineState.STOPPED,
    "destroying": MachineState.TERMINATED,
    "destroyed": MachineState.TERMINATED,
    "expunging": MachineState.TERMINATED,
    "error": MachineState.ERROR,
}
TOKEN_LABEL = "slipway-token"
MIN_DISK_GB = 10  # the smallest disk create-instance accepts, GiB
MAX_USER_DATA = 32768  # characters of base64 create-instance accepts
TYPES_KEPT_S = 600.0
"""How long the zone's instance types, read once, are taken as still so."""
_SAFE_LABEL = re.compile(r"[A-Za-z0-9._-]{1,63}")


def _token_label(token: str) -> str:
    """A label value safe for any token: long or unusual ones are hashed."""
    if _SAFE_LABEL.fullmatch(token):
        return token
    return hashlib.sha256(token.encode()).hexdigest()[:40]


def _api_name(item: Mapping[str, Any]) -> str:
    """The instance type as Exoscale's own tools name it: ``standard.medium``."""
    return f"{item.get('family', '')}.{item.get('size', '')}"


def _type_name(item: Mapping[str, Any]) -> str:
    """The flavor's name in catalogs: the standard family by its size alone,
    as the tutorial's table has it (``Medium``, ``Extra-large``), so that a
    refreshed catalog keeps the names definitions use; others as ``gpu.small``."""
    if item.get("family") == "standard":
        return str(item.get("size", "")).capitalize()
    return _api_name(item)


class ExoscaleConnector:
    """One Exoscale zone, reached through ``api`` (see ``connect``)."""

    def __init__(self, cloud: str, api: ExoscaleApi) -> None:
        self.cloud = cloud
        self.api = api
        self._types: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._template_gb: dict[str, int] = {}  # a template's size never changes
        self._lock = threading.Lock()
        self.unsupported: Mapping[Capability, str] = limits_of("exoscale")

    # -- machines ----------------------------------------------------------------

    def create_machine(self, spec: MachineSpec) -> Machine:
        token = _token_label(spec.client_token) if spec.client_token else ""
        with translated(self.cloud, "create machine"):
            if token and not spec.first_attempt:
                existing = self._by_token(token)
                if existing is not None:
                    return existing
            body = self._create_body(spec, token)
            started = self._start(body, token)
            if isinstance(started, Machine):
                return started
            done = self.api.finished("create machine", started)
        return self.get_machine(str(done["reference"]["id"]))

    def _start(self, body: dict[str, Any], token: str) -> dict[str, Any] | Machine:
        """Send create-instance; after a transient failure, look the token up
        before sending again (the first may have been done, its answer lost).
        Without a token nothing can be looked up, so nothing is sent twice."""
        attempts = self.api.settings.attempts if token else 1
        for attempt in range(1, attempts + 1):
            if attempt > 1 and token:
                existing = self._by_token(token)
                if existing is not None:
                    return existing
            try:
                started: dict[str, Any] = self.api.client.create_instance(**body)
            except Exception as exc:
                if attempt == attempts or not is_transient(exc):
                    raise
                self.api.back_off(attempt)
                continue
            return started
        raise AssertionError("unreachable")

    def _create_body(self, spec: MachineSpec, token: str) -> dict[str, Any]:
        labels = dict(spec.tags)
        if token:
            labels[TOKEN_LABEL] = token
        user_data = base64.b64encode(spec.user_data.encode()).decode()
        if len(user_data) > MAX_USER_DATA:
            raise InputError(
                f"the user data is {len(user_data)} characters in base64; "
                f"Exoscale accepts at most {MAX_USER_DATA}",
                hint="shorten the recipes, or fetch long scripts from the machine",
            )
        body: dict[str, Any] = {
            "name": spec.name,
            "instance_type": {"id": self._type_id(spec.flavor)},
            "template": {"id": spec.image_id},
            "disk_size": self._disk_gb(spec.image_id, spec.disk_gb),
            "labels": labels,
            "public_ip_assignment": "inet4",
            "user_data": user_data,
        }
        if spec.security_groups:
            body["security_groups"] = [{"id": i} for i in self._group_ids(spec.security_groups)]
        return body

    def _by_token(self, token: str) -> Machine | None:
        for machine in self._listed({TOKEN_LABEL: token}):
            return machine
        return None

    def get_machine(self, machine_id: str) -> Machine:
        try:
            item = self.api.read(f"machine {machine_id}", "get_instance", id=machine_id)
        except NotFound:
            raise NotFound(f"{self.cloud}: machine {machine_id} does not exist") from None
        return self._to_machine(item)

    def delete_machine(self, machine_id: str) -> None:
        """Deletes the instance; its disk goes with it (Exoscale keeps no
        separate volume), and nothing else was made for it alone."""
        try:
            self.api.change(
                f"delete machine {machine_id}", "delete_instance", retry=True, id=machine_id
            )
        except NotFound:
            return

    def list_machines(self, tags: Mapping[str, str]) -> list[Machine]:
        return self._listed(tags or {})

    def _listed(self, tags: Mapping[str, str]) -> list[Machine]:
        # Labels are matched here: list-instances' labels filter has no
        # documented syntax in the API's own description.
        items = self.api.read("list machines", "list_instances").get("instances", [])
        found = []
        for item in items:
            labels = item.get("labels") or {}
            if not tags and RUN_TAG not in labels:
                continue
            if any(labels.get(k) != v for k, v in tags.items()):
                continue
            machine = self._to_machine(item)
            if not machine.state.is_gone:
                found.append(machine)
        return found

    def _to_machine(self, item: Mapping[str, Any]) -> Machine:
        state = EXOSCALE_STATES.get(str(item.get("state", "")), MachineState.UNKNOWN)
        labels = dict(item.get("labels") or {})
        labels.pop(TOKEN_LABEL, None)
        address = item.get("public-ip") if state is MachineState.RUNNING else None
        return Machine(
            id=str(item["id"]),
            name=str(item.get("name", item["id"])),
            state=state,
            address=address or None,
            ssh_port=22,
            tags=labels,
            image_id=str((item.get("template") or {}).get("id", "")),
            flavor=self._flavor_of(item.get("instance-type") or {}),
            cloud_message="the instance is in error" if state is MachineState.ERROR else "",
        )

    def console_log(self, machine_id: str, lines: int = 100) -> str:
        raise Unsupported(self.unsupported[Capability.CONSOLE_LOG], cloud=self.cloud)

    # -- instance types, templates -------------------------------------------------

    def check(self) -> None:
        """The zone's instance types: a signed read, kept for the deploy after."""
        self._instance_types()

    def _instance_types(self) -> dict[str, dict[str, Any]]:
        """The zone's instance types by id, read at most every ``TYPES_KEPT_S``."""
        with self._lock:
            if self._types is not None and time.monotonic() - self._types[0] < TYPES_KEPT_S:
                return self._types[1]
        items = self.api.read("list instance types", "list_instance_types")
        zone = self.api.zone
        types = {
            str(t["id"]): t
            for t in items.get("instance-types", [])
            if zone in t.get("zones", [zone]) and t.get("authorized", True) is not False
        }
        with self._lock:
            self._types = (time.monotonic(), types)
        return types

    def _type_id(self, flavor: str) -> str:
        wanted = flavor.lower()
        if "." not in wanted:
            wanted = f"standard.{wanted}"
        types = self._instance_types()
        for type_id, item in types.items():
            if _api_name(item) == wanted:
                return type_id
        known = ", ".join(sorted(_api_name(t) for t in types.values()))
        raise CloudError(
            f"instance type {flavor} is not offered in zone {self.api.zone}",
            cloud=self.cloud,
            hint=f"the zone offers: {known}",
        )

    def _flavor_of(self, ref: Mapping[str, Any]) -> str:
        if ref.get("family") and ref.get("size"):
            return _type_name(ref)
        item = self._instance_types().get(str(ref.get("id", "")))
        return _type_name(item) if item else str(ref.get("id", ""))

    def _disk_gb(self, template_id: str, disk_gb: float | None) -> int:
        """The requested disk in GiB, never below the template's size nor Exoscale's minimum."""
        with self._lock:
            known = self._template_gb.get(template_id)
        if known is None:
            try:
                template = self.api.read(f"template {template_id}", "get_template", id=template_id)
            except NotFound:
                raise CloudError(
                    f"template {template_id} does not exist in zone {self.api.zone}",
                    cloud=self.cloud,
                    hint="the image's native id for this cloud is not a template of this zone",
                ) from None
            known = math.ceil(int(template.get("size", 0)) / 2**30)
            with self._lock:
                self._template_gb[template_id] = known
        return max(MIN_DISK_GB, known, math.ceil(disk_gb or 0))

    def flavors(self) -> list[Flavor]:
        """The zone's instance types that need no authorisation; ``disk`` is
        ``None``: Exoscale's disk is chosen at deploy time."""
        with self._lock:
            self._types = None  # a refresh reads the cloud anew
        result = [
            Flavor(name=_type_name(t), cpu=int(t.get("cpus", 0)),
                   ram=int(t.get("memory", 0)) / 2**30, disk=None)
            for t in self._instance_types().values()
        ]  # fmt: skip
        return sorted(result, key=lambda f: (f.cpu, f.ram, f.name))

    def images(self) -> list[CloudImage]:
        """The account's own templates, then Exoscale's public ones; hidden
        (deprecated) ones left out."""
        found = []
        for visibility in ("private", "public"):
            for template in self._templates(visibility):
                image = to_cloud_image(template, visibility)
                if not image.hidden:
                    found.append(image)
        return found

    def _templates(self, visibility: str) -> list[dict[str, Any]]:
        reply = self.api.read("list templates", "list_templates", visibility=visibility)
        return list(reply.get("templates", []))

    def upload_image(self, path: Path, name: str, properties: Mapping[str, str]) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_UPLOAD], cloud=self.cloud)

    def stream_image(
        self, stream: ImageStream, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        raise Unsupported(self.unsupported[Capability.IMAGE_STREAMING], cloud=self.cloud)

    def register_image(
        self, source: ImageSource, name: str, properties: Mapping[str, str]
    ) -> CloudImage:
        """``register-template``: Exoscale downloads ``source.url`` and checks
        it against ``source.md5``, and lists the template
        only once it holds it. ``properties`` go in the description (see
        ``_templates``); ones that cannot fit are an ``InputError`` before
        anything is sent. The operation is waited for; when it fails or times
        out, the template it made, if any, is deleted and the API's message
        raised as a ``CloudError``."""
        body = register_body(source, name, properties)
        action = f"register image {name}"
        self.api.check_zone()
        with translated(self.cloud, action):
            # Sent once: a second register-template would make a second template.
            started: dict[str, Any] = self.api.client.register_template(**body)
        template_id = str((started.get("reference") or {}).get("id") or "")
        try:
            with translated(self.cloud, action):
                self.api.finished(action, started)
            template: dict[str, Any] = self.api.read(action, "get_template", id=template_id)
            held = str(template.get("checksum") or "").lower()
            if held and held != source.md5.lower():
                raise CloudError(
                    f"{action}: Exoscale holds a template with MD5 {held}, not {source.md5}",
                    cloud=self.cloud,
                    hint="the file changed at its URL; the template was deleted",
                )
        except BaseException as exc:
            if template_id:
                self._forget(template_id, exc)
            raise
        return to_cloud_image(template, "private")

    def _forget(self, template_id: str, failure: BaseException) -> None:
        """Delete what a failed registration left; the registration's own
        error is the one raised, with a note when the delete fails too."""
        try:
            self.delete_image(template_id)
        except CloudError as exc:
            failure.add_note(f"template {template_id} may be left behind: {exc}")

    def find_images(self, properties: Mapping[str, str]) -> list[CloudImage]:
        """The account's own templates carrying all of ``properties``, hidden
        ones included; all are ``ready``, as Exoscale lists no other."""
        found = [to_cloud_image(t, "private") for t in self._templates("private")]
        return [i for i in found if all(i.properties.get(k) == v for k, v in properties.items())]

    def share_image(self, image_id: str, project: str) -> None:
        raise Unsupported(self.unsupported[Capability.IMAGE_SHARING], cloud=self.cloud)

    def hide_image(self, image_id: str) -> None:
        """Templates have no deprecation flag: ``update-template`` puts
        ``[deprecated] `` before the name and the description (see
        ``_templates``). Instances already started from it run on."""
        try:
            template = self.api.read(f"image {image_id}", "get_template", id=image_id)
        except NotFound:
            raise NotFound(f"{self.cloud}: image {image_id} does not exist") from None
        if is_hidden(template):
            return
        name, description = hidden_update(template)
        self.api.change(
            f"hide image {image_id}", "update_template",
            id=image_id, name=name, description=description,
        )  # fmt: skip

    def delete_image(self, image_id: str) -> None:
        try:
            self.api.change(f"delete image {image_id}", "delete_template", retry=True, id=image_id)
        except NotFound:
            return

    def image_users(self, image_id: str) -> list[str]:
        """The zone's live instances whose template is the image (list-instances
        gives each instance's template)."""
        items = self.api.read("list machines", "list_instances").get("instances", [])
        return [
            str(item["id"])
            for item in items
            if str((item.get("template") or {}).get("id", "")) == image_id
            and not EXOSCALE_STATES.get(str(item.get("state", "")), MachineState.UNKNOWN).is_gone
        ]

    # -- security groups -------------------------------------------------------------

    def _groups(self) -> dict[str, dict[str, Any]]:
        """The account's groups by name (without their rules)."""
        reply = self.api.read("list security groups", "list_security_groups")
        return {str(g["name"]): g for g in reply.get("security-groups", [])}

    def _group(self, name: str) -> dict[str, Any] | None:
        """The group named ``name`` with its rules, or ``None``."""
        listed = self._groups().get(name)
        if listed is None:
            return None
        group: dict[str, Any] = self.api.read(
            f"security group {name}", "get_security_group", id=listed["id"]
        )
        return group

    def _group_ids(self, names: Sequence[str]) -> list[str]:
        groups = self._groups()
        missing = [n for n in names if n not in groups]
        if missing:
            raise CloudError(
                f"security group {', '.join(missing)} does not exist", cloud=self.cloud
            )
        return [str(groups[n]["id"]) for n in names]

    def check_security_group(self, name: str) -> SecurityGroup | None:
        group = self._group(name)
        if group is None:
            return None
        rules = to_rules(group.get("rules", []))
        return SecurityGroup(name, tuple(rules.values()), str(group["id"]))

    def ensure_security_group(self, name: str, rules: Sequence[Rule]) -> SecurityGroup:
        """Create the group when missing (its description marked as Slipway's),
        add the missing ingress rules, delete the extra ones; egress rules are
        left as they are."""
        wanted = wanted_rules(name, rules)
        group = self._group(name)
        action = f"security group {name}"
        if group is None:
            done = self.api.change(
                action, "create_security_group",
                name=name, description=f"{MANAGED_MARK}: made by Slipway; its rules are declared",
            )  # fmt: skip
            group_id, current = str(done["reference"]["id"]), {}
        elif not is_managed(group):
            raise CloudError(
                f"security group {name} was not made by Slipway, which leaves it as it is",
                cloud=self.cloud,
                hint="rename or delete that group, or declare yours under another name",
            )
        else:
            group_id, current = str(group["id"]), to_rules(group.get("rules", []))
        for rule in wanted:
            if rule not in current.values():
                self.api.change(action, "add_rule_to_security_group", id=group_id, **to_body(rule))
        for rule_id, rule in current.items():
            if rule not in wanted:
                self.api.change(
                    action, "delete_rule_from_security_group", id=group_id, rule_id=rule_id
                )
        return SecurityGroup(name, tuple(wanted), group_id)
