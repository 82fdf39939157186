"""A real HTTP proxy between boto3 and moto that behaves like a slow, flaky EC2.

- Instances look ``pending`` for ``boot_seconds`` after moto first reports
  them, and have no address for ``address_seconds`` (moto answers running,
  with an address, at once), so the polling path is exercised.
- ``inject(kind, count, action=None)`` makes the next ``count`` matching
  requests fail: ``throttle`` (HTTP 503 RequestLimitExceeded, as EC2 sends it),
  ``5xx`` (HTTP 500 InternalError), ``timeout`` (no answer for longer than
  the client's read timeout), or ``lost`` (moto does the work, the client gets
  HTTP 500: the answer was lost on the way back).
- The EBS direct APIs (REST under ``/snapshots``, block data in the body)
  pass through too; their actions are named after the method and the path
  (``StartSnapshot``, ``PutSnapshotBlock`` …), so faults can target them.
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.parse
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_ERRORS = {
    "throttle": (503, "RequestLimitExceeded", "Request limit exceeded."),
    "5xx": (500, "InternalError", "An internal error has occurred."),
}


def _ebs_action(method: str, path: str) -> str:
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts == ["snapshots"]:
        return "StartSnapshot"
    if parts[1:2] == ["completion"]:
        return "CompleteSnapshot"
    if parts[-1] == "changedblocks":
        return "ListChangedBlocks"
    if parts[-1] == "blocks":
        return "ListSnapshotBlocks"
    return "PutSnapshotBlock" if method == "PUT" else "GetSnapshotBlock"


class Ec2Proxy:
    def __init__(
        self,
        upstream_port: int,
        *,
        boot_seconds: float = 0.0,
        address_seconds: float = 0.0,
        timeout_seconds: float = 3.0,
    ) -> None:
        self.upstream_port = upstream_port
        self.boot_seconds = boot_seconds
        self.address_seconds = address_seconds
        self.timeout_seconds = timeout_seconds
        self.requests: Counter[str] = Counter()
        self.faults_served: Counter[str] = Counter()
        self._faults: list[tuple[str, str | None]] = []
        self._first_seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Ec2Proxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, kind: str, count: int = 1, action: str | None = None) -> None:
        assert kind in ("throttle", "5xx", "timeout", "lost"), kind
        with self._lock:
            self._faults.extend([(kind, action)] * count)

    def _take_fault(self, action: str) -> str | None:
        with self._lock:
            for index, (kind, wanted) in enumerate(self._faults):
                if wanted in (None, action):
                    del self._faults[index]
                    self.faults_served[kind] += 1
                    return kind
        return None

    def _rewrite(self, body: bytes) -> bytes:
        root = ET.fromstring(body)
        ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
        ET.register_namespace("", ns)
        now = time.monotonic()
        for item in root.iter(f"{{{ns}}}item"):
            instance_id = item.findtext(f"{{{ns}}}instanceId")
            state = item.find(f"{{{ns}}}instanceState")
            if instance_id is None or state is None:
                continue
            with self._lock:
                age = now - self._first_seen.setdefault(instance_id, now)
            name = state.find(f"{{{ns}}}name")
            code = state.find(f"{{{ns}}}code")
            if name is not None and name.text == "running":
                if age < self.boot_seconds:
                    name.text = "pending"
                    if code is not None:
                        code.text = "0"
                if age < self.address_seconds:
                    for tag in ("ipAddress", "privateIpAddress", "dnsName", "privateDnsName"):
                        for child in item.findall(f"{{{ns}}}{tag}"):
                            item.remove(child)
        return ET.tostring(root, xml_declaration=True, encoding="UTF-8")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _reply(
                self,
                status: int,
                body: bytes,
                content_type: str = "text/xml",
                headers: Sequence[tuple[str, str]] = (),
            ) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    for key, value in headers:
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client timed out and went away

            def _fault_reply(self, rest: bool, kind: str, request: str) -> None:
                status, code, message = _ERRORS[kind]
                if rest:  # the EBS direct APIs speak JSON
                    body = f'{{"message": "{message}"}}'.encode()
                    self._reply(status, body, "application/json", [("x-amzn-ErrorType", code)])
                    return
                xml = (
                    f"<?xml version='1.0' encoding='UTF-8'?><Response><Errors><Error>"
                    f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
                    f"<RequestID>{request}</RequestID></Response>"
                ).encode()
                self._reply(status, xml)

            def _forward(self, method: str) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                rest = self.path.startswith("/snapshots")
                if rest:
                    action = _ebs_action(method, self.path)
                else:
                    action = urllib.parse.parse_qs(body.decode()).get("Action", ["?"])[0]
                proxy.requests[action] += 1
                fault = proxy._take_fault(action)
                if fault == "timeout":
                    time.sleep(proxy.timeout_seconds)
                    self.close_connection = True
                    return
                if fault is not None and fault != "lost":
                    self._fault_reply(rest, fault, "fault")
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                upstream.request(method, self.path, body=body or None, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if fault == "lost":
                    self._fault_reply(rest, "5xx", "lost")
                    return
                if action in ("DescribeInstances", "RunInstances") and response.status == 200:
                    data = proxy._rewrite(data)
                passed = [(k, v) for k, v in response.getheaders() if k.lower().startswith("x-amz")]
                content_type = response.getheader("Content-Type", "text/xml")
                self._reply(response.status, data, content_type, passed)

            def do_POST(self) -> None:
                self._forward("POST")

            def do_PUT(self) -> None:
                self._forward("PUT")

            def do_GET(self) -> None:
                self._forward("GET")

        return Handler
