"""A fake of Exoscale's v2 API over real HTTP, shaped on the OpenAPI document
the ``exoscale`` SDK ships (``exoscale/openapi.json``).

- Served at ``http://127.0.0.1:PORT/<zone>/v2`` for each zone it knows
  (``endpoint`` is that URL with ``{zone}``, as the connector's option takes
  it). Any other zone stands for a host name that does not exist: HTTP 404,
  no API behind it. Instances and templates belong to a zone; security
  groups, as on Exoscale, to the whole organisation.
- Requests are routed by the document's paths to its operation ids, and only
  the operations the connector uses are implemented. Path parameters, query
  parameters and JSON bodies are validated against the document's schemas
  (400 with the validator's words); every answer is validated against the
  document too, so the fake cannot drift from it unnoticed (a mismatch is a
  500 naming it).
- Every call but ``list-zones`` must carry a valid ``EXO2-HMAC-SHA256``
  signature, checked as the API does: HMAC-SHA256 with the secret over the
  method and path, the body, the values of the query arguments named in
  ``signed-query-args`` (which must name them all), an empty header line and
  the expiry, a Unix time that must not have passed; else 403.
- Changes answer an operation (``pending``, with its reference), reported
  ``pending`` for the next ``pending_polls`` polls, then ``success`` — or
  ``failure`` with a reason and message, for one queued with
  :meth:`fail_next`. Instances are ``starting`` for ``boot_polls``
  reads, then ``running``.
- ``register-template`` does what Exoscale does: a thread fetches the URL
  and checks the MD5 (and the size, when given) while the operation stays
  ``pending``; the template is listed, private, only once that succeeds. A
  URL that does not answer 200, or a file that does not match, ends the
  operation in ``failure`` with the reason, and the unlisted template stays
  (``Zone.registering``) until deleted.
- :meth:`lose_next` does a request's work and answers HTTP 500 (an answer
  lost on its way back); :meth:`refuse_next` answers an HTTP error without
  doing anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema

GiB = 2**30

# The standard family as Exoscale sells it: size → (cpus, memory GiB).
STANDARD_SIZES = {
    "micro": (1, 0.5),
    "tiny": (1, 1),
    "small": (2, 2),
    "medium": (2, 4),
    "large": (4, 8),
    "extra-large": (4, 16),
    "huge": (8, 32),
    "mega": (12, 64),
    "titan": (16, 128),
}


def _document() -> dict[str, Any]:
    import exoscale

    return dict(json.loads((Path(exoscale.__file__).parent / "openapi.json").read_text()))


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Operation:
    id: str
    reference: dict[str, str]
    polls_left: int
    done: Callable[[], None] = lambda: None
    failure: tuple[str, str] | None = None
    state: str = "pending"
    busy: bool = False  # pending, whatever the polls, while its work goes on

    def view(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "state": self.state, "reference": self.reference}
        if self.state == "failure" and self.failure:
            out["reason"], out["message"] = self.failure
        return out


@dataclass
class Zone:
    name: str
    instances: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    registering: dict[str, dict[str, Any]] = field(default_factory=dict)  # not listed
    reads: Counter[str] = field(default_factory=Counter)


class _Document:
    """The OpenAPI document: routes, and schemas with every ``$ref`` resolved."""

    def __init__(self) -> None:
        self.doc = _document()
        self.routes: list[tuple[str, re.Pattern[str], dict[str, Any]]] = []
        for path, item in self.doc["paths"].items():
            parts = re.split(r"\{([^}]+)\}", path)  # literal, name, literal, …
            pattern = "".join(
                re.escape(part) if i % 2 == 0 else f"(?P<{part.replace('-', '_')}>[^/:]+)"
                for i, part in enumerate(parts)
            )
            for verb, operation in item.items():
                self.routes.append((verb.upper(), re.compile(f"^{pattern}$"), operation))
        self.checker = jsonschema.FormatChecker()

    def route(self, method: str, path: str) -> tuple[dict[str, Any], dict[str, str]]:
        for verb, pattern, operation in self.routes:
            match = pattern.match(path)
            if verb == method and match:
                params = {k.replace("_", "-"): v for k, v in match.groupdict().items()}
                return operation, params
        raise ApiError(404, f"no operation {method} {path}")

    def resolved(self, schema: Any, depth: int = 0) -> Any:
        if depth > 20:
            return {}
        if isinstance(schema, dict):
            if "$ref" in schema:
                target: Any = self.doc
                for part in schema["$ref"].lstrip("#/").split("/"):
                    target = target[part]
                extra = {k: v for k, v in schema.items() if k != "$ref"}
                return {**self.resolved(target, depth + 1), **extra}
            return {k: self.resolved(v, depth + 1) for k, v in schema.items()}
        if isinstance(schema, list):
            return [self.resolved(v, depth + 1) for v in schema]
        return schema

    def check(self, schema: Any, value: Any, what: str) -> None:
        validator = jsonschema.Draft4Validator(self.resolved(schema), format_checker=self.checker)
        error = jsonschema.exceptions.best_match(validator.iter_errors(value))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or what
            raise ApiError(400, f"invalid {where}: {error.message}")

    def check_request(
        self, operation: dict[str, Any], params: dict[str, str], query: dict[str, str], body: Any
    ) -> None:
        for p in operation.get("parameters", []):
            source = params if p["in"] == "path" else query
            if p["name"] in source:
                self.check(p["schema"], source[p["name"]], p["name"])
            elif p.get("required"):
                raise ApiError(400, f"missing parameter {p['name']}")
        if "requestBody" in operation:
            schema = operation["requestBody"]["content"]["application/json"]["schema"]
            self.check(schema, body, "body")

    def check_answer(self, operation: dict[str, Any], answer: Any) -> None:
        schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
        try:
            self.check(schema, answer, "answer")
        except ApiError as exc:
            raise ApiError(500, f"the fake's answer breaks the document: {exc.message}") from exc


@functools.cache
def _shared_document() -> _Document:
    """Read once per test session: the document is a megabyte of JSON."""
    return _Document()


def signature_problem(
    secrets: dict[str, str],
    method: str,
    raw_path: str,
    body: bytes,
    header: str,
    now: float,
) -> str | None:
    """Why the request's ``EXO2-HMAC-SHA256`` signature is refused, or ``None``."""
    scheme, _, rest = header.partition(" ")
    if scheme != "EXO2-HMAC-SHA256":
        return "missing or unknown authorization scheme"
    fields = dict(part.split("=", 1) for part in rest.split(",") if "=" in part)
    secret = secrets.get(fields.get("credential", ""))
    if secret is None:
        return "unknown API key"
    try:
        expires = int(fields["expires"])
    except (KeyError, ValueError):
        return "missing expiry"
    if expires < now:
        return "request expired"
    url = urlsplit(raw_path)
    query = parse_qs(url.query)
    signed = [a for a in fields.get("signed-query-args", "").split(";") if a]
    if set(signed) != set(query):
        return "unsigned query arguments"
    message = b"\n".join([
        f"{method} {url.path}".encode(),
        body,
        "".join(query[a][0] for a in signed).encode(),
        b"",
        str(expires).encode(),
    ])  # fmt: skip
    expected = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    given = fields.get("signature", "")
    if not hmac.compare_digest(base64.standard_b64encode(expected).decode(), given):
        return "invalid request signature"
    return None


class FakeExoscale:
    """Exoscale's v2 API for the zones given, with one API key."""

    def __init__(
        self,
        zones: tuple[str, ...] = ("ch-gva-2", "ch-dk-2"),
        *,
        key: str = "EXOfake0123456789abcdef",
        secret: str = "fake-secret",
        pending_polls: int = 1,
        boot_polls: int = 1,
    ) -> None:
        self.key, self.secret = key, secret
        self.pending_polls = pending_polls
        self.boot_polls = boot_polls
        self.zones = {name: Zone(name) for name in zones}
        self.groups: dict[str, dict[str, Any]] = {}
        self.operations: dict[str, Operation] = {}
        self.instance_types = self._standard_types(zones)
        self.requests: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()  # 403s, by reason
        self._failures: dict[str, list[tuple[str, str]]] = {}
        self._lost: Counter[str] = Counter()
        self._errors: dict[str, list[tuple[int, str]]] = {}
        self._next_ip = 10
        self._lock = threading.RLock()
        self._doc = _shared_document()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @staticmethod
    def _standard_types(zones: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        types = {}
        sizes = [("standard", s, c, m, True) for s, (c, m) in STANDARD_SIZES.items()]
        sizes.append(("gpu", "small", 12, 56, False))  # needs authorisation
        for family, size, cpus, memory, authorized in sizes:
            type_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{family}.{size}.exoscale.test"))
            types[type_id] = {
                "id": type_id, "family": family, "size": size, "cpus": cpus,
                "memory": int(memory * GiB), "authorized": authorized, "zones": list(zones),
            }  # fmt: skip
        return types

    # -- life ------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/{{zone}}/v2"

    def start(self) -> FakeExoscale:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests arrange and look at --------------------------------------------------

    def add_template(
        self, zone: str, template_id: str, name: str, *, size_gb: int = 10, public: bool = False
    ) -> None:
        self.zones[zone].templates[template_id] = {
            "id": template_id, "name": name, "size": size_gb * GiB, "family": "linux",
            "visibility": "public" if public else "private", "default-user": "debian",
            "boot-mode": "legacy", "zones": [zone], "ssh-key-enabled": True,
            "password-enabled": False, "checksum": "0" * 32,
        }  # fmt: skip

    def add_group(self, name: str, description: str, rules: list[dict[str, Any]]) -> str:
        """A group made by someone else, as the portal would."""
        group_id = str(uuid.uuid4())
        with_ids = [{"id": str(uuid.uuid4()), **r} for r in rules]
        self.groups[group_id] = {
            "id": group_id, "name": name, "description": description, "rules": with_ids,
        }  # fmt: skip
        return group_id

    def group(self, name: str) -> dict[str, Any]:
        return next(g for g in self.groups.values() if g["name"] == name)

    def instances(self, zone: str) -> list[dict[str, Any]]:
        return list(self.zones[zone].instances.values())

    def type_name(self, type_id: str) -> str:
        item = self.instance_types[type_id]
        return f"{item['family']}.{item['size']}"

    def fail_next(self, operation_id: str, reason: str, message: str) -> None:
        """The next ``operation_id`` change ends in ``failure`` with these words."""
        with self._lock:
            self._failures.setdefault(operation_id, []).append((reason, message))

    def lose_next(self, operation_id: str, count: int = 1) -> None:
        with self._lock:
            self._lost[operation_id] += count

    def refuse_next(self, operation_id: str, status: int, message: str, count: int = 1) -> None:
        with self._lock:
            self._errors.setdefault(operation_id, []).extend([(status, message)] * count)

    # -- HTTP ------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, answer = fake._answer(
                    self.command, self.path, body, self.headers.get("Authorization", "")
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def _answer(self, method: str, raw: str, body: bytes, auth: str) -> tuple[int, Any]:
        match = re.match(r"^/([^/]+)/v2(/[^?]*)", raw)
        if match is None or match.group(1) not in self.zones:
            return 404, {"message": "no API at this address"}
        zone, path = self.zones[match.group(1)], match.group(2)
        try:
            operation, params = self._doc.route(method, path)
            name = operation["operationId"]
            with self._lock:
                self.requests[name] += 1
            if name != "list-zones":
                problem = signature_problem(
                    {self.key: self.secret}, method, raw, body, auth, time.time()
                )
                if problem is not None:
                    with self._lock:
                        self.refused[problem] += 1
                    raise ApiError(403, problem)
            query = {k: v[0] for k, v in parse_qs(urlsplit(raw).query).items()}
            payload = json.loads(body) if body else None
            self._doc.check_request(operation, params, query, payload)
            with self._lock:
                refusal = self._take_error(name)
                if refusal is not None:
                    raise ApiError(*refusal)
                answer = self._do(name, zone, params, query, payload)
                lost = self._lost[name] > 0
                if lost:
                    self._lost[name] -= 1
            self._doc.check_answer(operation, answer)
            if lost:
                return 500, {"message": "internal error"}
            return 200, answer
        except ApiError as exc:
            return exc.status, {"message": exc.message}

    def _take_error(self, name: str) -> tuple[int, str] | None:
        queued = self._errors.get(name)
        return queued.pop(0) if queued else None

    # -- operations ----------------------------------------------------------------

    def _do(
        self, name: str, zone: Zone, params: dict[str, str], query: dict[str, str], body: Any
    ) -> Any:
        handler = getattr(self, "_op_" + name.replace("-", "_"), None)
        if handler is None:
            raise ApiError(501, f"{name} is not implemented by this fake")
        return handler(zone, params, query, body)

    def _start(
        self, name: str, reference: tuple[str, str, str], done: Callable[[], None] = lambda: None
    ) -> dict[str, Any]:
        ref_id, link, command = reference
        queued = self._failures.get(name)
        operation = Operation(
            str(uuid.uuid4()),
            {"id": ref_id, "link": link, "command": command},
            self.pending_polls,
            done,
            queued.pop(0) if queued else None,
        )
        self.operations[operation.id] = operation
        return operation.view()

    def _op_get_operation(self, zone: Zone, params: dict[str, str], *_: Any) -> Any:
        operation = self.operations.get(params["id"])
        if operation is None:
            raise ApiError(404, f"operation {params['id']} not found")
        if operation.state == "pending":
            if operation.polls_left > 0:
                operation.polls_left -= 1
            elif not operation.busy:
                operation.state = "failure" if operation.failure else "success"
                if operation.failure is None:
                    operation.done()
        return operation.view()

    def _op_list_zones(self, *_: Any) -> Any:
        return {"zones": [{"name": z, "api-endpoint": self.endpoint.format(zone=z)}
                          for z in self.zones]}  # fmt: skip

    def _op_list_instance_types(self, *_: Any) -> Any:
        return {"instance-types": list(self.instance_types.values())}

    def _op_list_templates(self, zone: Zone, _: Any, query: dict[str, str], __: Any) -> Any:
        visibility = query.get("visibility", "public")
        return {"templates": [t for t in zone.templates.values()
                              if t["visibility"] == visibility]}  # fmt: skip

    def _op_get_template(self, zone: Zone, params: dict[str, str], *_: Any) -> Any:
        return self._template(zone, params["id"])

    def _op_register_template(self, zone: Zone, _: Any, __: Any, body: dict[str, Any]) -> Any:
        template_id = str(uuid.uuid4())
        optional = ("description", "default-user", "build", "version", "maintainer")
        template = {
            "id": template_id, "name": body["name"], "url": body["url"],
            "checksum": body["checksum"], "visibility": "private", "zones": [zone.name],
            "ssh-key-enabled": body["ssh-key-enabled"],
            "password-enabled": body["password-enabled"],
            "boot-mode": body.get("boot-mode", "legacy"),
            "created-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **{k: body[k] for k in optional if k in body},
        }  # fmt: skip
        zone.registering[template_id] = template

        def publish() -> None:
            registered = zone.registering.pop(template_id, None)
            if registered is not None:
                zone.templates[template_id] = registered

        answer = self._start(
            "register-template",
            (template_id, f"/v2/template/{template_id}", "get-template"),
            publish,
        )
        operation = self.operations[answer["id"]]
        operation.busy = True
        threading.Thread(
            target=self._download, args=(operation, template, body.get("size")), daemon=True
        ).start()
        return answer

    def _download(self, operation: Operation, template: dict[str, Any], size: int | None) -> None:
        """What Exoscale does for register-template: fetch the URL, check the
        MD5 and the size (of the file, when given); the operation fails with
        the reason otherwise. The template's ``size`` is its disk's, read from
        a qcow2 header."""
        url, wanted = template["url"], template["checksum"].lower()
        md5, length, disk_size = hashlib.md5(usedforsecurity=False), 0, 0
        problem: tuple[str, str] | None = None
        try:
            with urllib.request.urlopen(url, timeout=10) as reply:
                for chunk in iter(lambda: reply.read(1 << 16), b""):
                    if length == 0 and chunk[:4] == b"QFI\xfb":  # qcow2: the disk's size
                        disk_size = int.from_bytes(chunk[24:32], "big")
                    md5.update(chunk)
                    length += len(chunk)
        except urllib.error.HTTPError as exc:
            problem = ("not-found", f"template download failed: {url} answered HTTP {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            problem = ("unavailable", f"template download failed: {url}: {exc}")
        else:
            got = md5.hexdigest()
            if got != wanted:
                problem = ("incorrect", f"checksum mismatch: got {got}, expected {wanted}")
            elif size is not None and size != length:
                problem = ("incorrect", f"size mismatch: got {length} bytes, expected {size}")
        with self._lock:
            if problem is None:
                template["size"] = disk_size or length
            elif operation.failure is None:
                operation.failure = problem
            operation.busy = False

    def _template(self, zone: Zone, template_id: str) -> dict[str, Any]:
        template = zone.templates.get(template_id)
        if template is None:
            raise ApiError(404, f"template {template_id} not found")
        return template

    def _op_update_template(
        self, zone: Zone, params: dict[str, str], _: Any, body: dict[str, Any]
    ) -> Any:
        template = self._template(zone, params["id"])
        changes = {k: body[k] for k in ("name", "description") if k in body}
        return self._start(
            "update-template",
            (template["id"], f"/v2/template/{template['id']}", "get-template"),
            lambda: template.update(changes),
        )

    def _op_delete_template(self, zone: Zone, params: dict[str, str], *_: Any) -> Any:
        template_id = params["id"]
        if template_id not in zone.templates and template_id not in zone.registering:
            raise ApiError(404, f"template {template_id} not found")

        def done() -> None:
            zone.templates.pop(template_id, None)
            zone.registering.pop(template_id, None)

        return self._start(
            "delete-template",
            (template_id, f"/v2/template/{template_id}", "get-template"),
            done,
        )

    # -- instances -------------------------------------------------------------------

    def _op_create_instance(self, zone: Zone, _: Any, __: Any, body: dict[str, Any]) -> Any:
        if body["instance-type"].get("id") not in self.instance_types:
            raise ApiError(404, f"instance type {body['instance-type'].get('id')} not found")
        template = zone.templates.get(body["template"].get("id", ""))
        if template is None:
            raise ApiError(404, f"template {body['template'].get('id')} not found")
        if body["disk-size"] * GiB < template["size"]:
            raise ApiError(400, "disk-size is smaller than the template")
        for ref in body.get("security-groups", []):
            if ref.get("id") not in self.groups:
                raise ApiError(404, f"security group {ref.get('id')} not found")
        if "user-data" in body:
            base64.b64decode(body["user-data"], validate=True)
        instance_id = str(uuid.uuid4())
        self._next_ip += 1
        zone.instances[instance_id] = {
            "id": instance_id, "name": body.get("name", instance_id), "state": "starting",
            "labels": body.get("labels", {}), "instance-type": {"id": body["instance-type"]["id"]},
            "template": {"id": template["id"]}, "disk-size": body["disk-size"],
            "security-groups": body.get("security-groups", []),
            "public-ip-assignment": body.get("public-ip-assignment", "inet4"),
            "public-ip": f"194.182.160.{self._next_ip}",
            "created-at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            **({"user-data": body["user-data"]} if "user-data" in body else {}),
        }  # fmt: skip
        name = "create-instance"
        if self._failures.get(name):  # a failed create leaves no instance behind
            del zone.instances[instance_id]
        reference = (instance_id, f"/v2/instance/{instance_id}", "get-instance")
        return self._start(name, reference)

    def _instance(self, zone: Zone, instance_id: str) -> dict[str, Any]:
        instance = zone.instances.get(instance_id)
        if instance is None:
            raise ApiError(404, f"instance {instance_id} not found")
        return instance

    def _op_get_instance(self, zone: Zone, params: dict[str, str], *_: Any) -> Any:
        instance = self._instance(zone, params["id"])
        zone.reads[instance["id"]] += 1
        if instance["state"] == "starting" and zone.reads[instance["id"]] > self.boot_polls:
            instance["state"] = "running"
        return instance

    def _op_list_instances(self, zone: Zone, *_: Any) -> Any:
        keys = ("id", "name", "state", "labels", "instance-type", "template", "public-ip",
                "security-groups", "created-at")  # fmt: skip
        return {"instances": [{k: i[k] for k in keys if k in i}
                              for i in zone.instances.values()]}  # fmt: skip

    def _op_delete_instance(self, zone: Zone, params: dict[str, str], *_: Any) -> Any:
        instance = self._instance(zone, params["id"])
        instance["state"] = "destroying"
        reference = (instance["id"], f"/v2/instance/{instance['id']}", "get-instance")
        return self._start(
            "delete-instance", reference, lambda: zone.instances.pop(instance["id"], None)
        )

    # -- security groups -------------------------------------------------------------

    def _group(self, group_id: str) -> dict[str, Any]:
        group = self.groups.get(group_id)
        if group is None:
            raise ApiError(404, f"security group {group_id} not found")
        return group

    def _op_list_security_groups(self, *_: Any) -> Any:
        return {"security-groups": [{k: v for k, v in g.items() if k != "rules"}
                                    for g in self.groups.values()]}  # fmt: skip

    def _op_get_security_group(self, zone: Zone, params: dict[str, str], *_: Any) -> Any:
        return self._group(params["id"])

    def _op_create_security_group(self, zone: Zone, _: Any, __: Any, body: Any) -> Any:
        if any(g["name"] == body["name"] for g in self.groups.values()):
            raise ApiError(409, f"a security group named {body['name']} already exists")
        group_id = self.add_group(body["name"], body.get("description", ""), [])
        return self._start(
            "create-security-group",
            (group_id, f"/v2/security-group/{group_id}", "get-security-group"),
        )

    def _op_add_rule_to_security_group(
        self, zone: Zone, params: dict[str, str], _: Any, body: dict[str, Any]
    ) -> Any:
        group = self._group(params["id"])
        if body["protocol"] in ("tcp", "udp") and not {"start-port", "end-port"} <= set(body):
            raise ApiError(400, "start-port and end-port are required for tcp and udp")
        if "network" not in body and "security-group" not in body:
            raise ApiError(400, "a rule needs a network or a security group")
        rule = {"id": str(uuid.uuid4()), **body}
        return self._start(
            "add-rule-to-security-group",
            (group["id"], f"/v2/security-group/{group['id']}", "get-security-group"),
            lambda: group["rules"].append(rule),
        )

    def _op_delete_rule_from_security_group(
        self, zone: Zone, params: dict[str, str], *_: Any
    ) -> Any:
        group = self._group(params["id"])
        if not any(r["id"] == params["rule-id"] for r in group["rules"]):
            raise ApiError(404, f"rule {params['rule-id']} not found")
        rule_id = params["rule-id"]

        def done() -> None:
            group["rules"] = [r for r in group["rules"] if r["id"] != rule_id]

        return self._start(
            "delete-rule-from-security-group",
            (group["id"], f"/v2/security-group/{group['id']}", "get-security-group"),
            done,
        )
