"""A small HTTP server for sync tests: serves a signed image list (with
ETag, Last-Modified and 304s) and image files (with ranges), and can drop
a download part-way, as real servers sometimes do."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["ListServer"]


@dataclass
class ListServer:
    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # path, range, status
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent before a drop
    ignore_ranges: bool = False
    drip: float = 0.0  # seconds between 64 KiB pieces of a file: a slow server
    _server: ThreadingHTTPServer | None = None

    def start(self) -> ListServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                owner._answer(self)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def hits(self, path: str) -> list[tuple[str, int]]:
        return [(r, status) for p, r, status in self.requests if p == path]

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path
        body = self.files.get(path)
        asked = handler.headers.get("Range", "")
        if body is None:
            self.requests.append((path, asked, 404))
            handler.send_error(404)
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if handler.headers.get("If-None-Match") == etag:
            self.requests.append((path, asked, 304))
            handler.send_response(304)
            handler.send_header("ETag", etag)
            handler.end_headers()
            return
        start = 0
        status = 200
        if asked.startswith("bytes=") and not self.ignore_ranges:
            start = int(asked.removeprefix("bytes=").split("-")[0])
            status = 206
        self.requests.append((path, asked, status))
        part = body[start:]
        handler.send_response(status)
        handler.send_header("Content-Length", str(len(part)))
        handler.send_header("ETag", etag)
        handler.send_header("Last-Modified", "Sun, 29 Nov 2026 10:00:00 GMT")
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        handler.end_headers()
        cut = self.cut_after.pop(path, None)
        if cut is not None:
            handler.wfile.write(part[:cut])
            handler.wfile.flush()
            handler.close_connection = True
            return
        if not self.drip:
            handler.wfile.write(part)
            return
        for start in range(0, len(part), 65536):
            try:
                handler.wfile.write(part[start : start + 65536])
                handler.wfile.flush()
            except OSError:  # the client went away
                return
            time.sleep(self.drip)
