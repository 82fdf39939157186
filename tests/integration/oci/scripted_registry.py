"""A registry that answers what a test scripts, on 127.0.0.1: to serve the
manifests and blobs a real registry never would (wrong digests, too many
bytes, hostile titles, bytes dripped slowly)."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

Route = Callable[["Exchange"], None]

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def disk_manifest(layers: list[tuple[bytes | str, int, Mapping[str, str]]]) -> bytes:
    """A disk artifact manifest whose layers are (content or digest, size,
    annotations)."""
    return json.dumps({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "artifactType": "application/x-qemu-disk",
        "config": {
            "mediaType": "application/vnd.oci.empty.v1+json", "digest": EMPTY_DIGEST, "size": 2
        },
        "layers": [
            {
                "mediaType": "application/x-qemu-disk",
                "digest": layer if isinstance(layer, str) else digest_of(layer),
                "size": size,
                "annotations": dict(annotations),
            }
            for layer, size, annotations in layers
        ],
    }).encode()  # fmt: skip


class Exchange:
    """One request and the means to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, stopping: threading.Event) -> None:
        self.handler = handler
        self.stopping = stopping

    @property
    def headers(self) -> Mapping[str, str]:
        return dict(self.handler.headers.items())

    def send(
        self,
        status: int,
        body: bytes = b"",
        *,
        headers: Mapping[str, str] | None = None,
        length: int | None = None,
    ) -> None:
        """Answer ``body`` with ``Content-Length: length`` (its true length by
        default; -1 for none, the end marked by closing the connection)."""
        announced = len(body) if length is None else length
        self.start(status, headers=headers, length=announced)
        self.write(body)

    def start(self, status: int, *, headers: Mapping[str, str] | None = None, length: int) -> None:
        self.handler.send_response(status)
        for name, value in (headers or {}).items():
            self.handler.send_header(name, value)
        if length >= 0:
            self.handler.send_header("Content-Length", str(length))
        else:
            self.handler.send_header("Connection", "close")
            self.handler.close_connection = True
        self.handler.end_headers()

    def write(self, data: bytes) -> None:
        try:
            self.handler.wfile.write(data)
            self.handler.wfile.flush()
        except OSError:
            pass  # the client hung up, as it should have

    def hold(self, seconds: float = 10.0) -> None:
        """Keep the connection open and silent, until the test ends."""
        self.stopping.wait(seconds)


class ScriptedRegistry:
    """Routes ``(method, path)`` to the test's functions; anything else is a
    404. ``requests`` records every (method, path, headers) received."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._httpd.server_address[1]}"

    def reference(self, name: str) -> str:
        return f"oci://{self.host}/{name}"

    def route(self, method: str, path: str, answer: Route) -> None:
        self.routes[(method, path)] = answer

    def paths(self, method: str = "GET") -> list[str]:
        return [path for m, path, _ in self.requests if m == method]

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version: ClassVar[str] = "HTTP/1.1"  # type: ignore[misc]

            def do_GET(self) -> None:
                self._answer("GET")

            def do_HEAD(self) -> None:
                self._answer("HEAD")

            def do_POST(self) -> None:
                self._answer("POST")

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self._answer("PUT")

            def _answer(self, method: str) -> None:
                registry.requests.append((method, self.path, dict(self.headers.items())))
                answer = registry.routes.get((method, self.path))
                exchange = Exchange(self, registry.stopping)
                if answer is None:
                    body = b'{"errors":[{"code":"NOT_FOUND","message":"not scripted"}]}'
                    exchange.send(404, body)
                else:
                    answer(exchange)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
