"""Request bodies are capped before they are read: over 1 MiB is a 413,
whether the body says its length or comes in chunks; the application never
reads more than the cap."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from slipway.entrypoints.api.body_limit import MAX_BODY_BYTES
from tests.conftest import WebWorld
from tests.security.conftest import problem

CHUNK = 64 * 1024


def test_the_cap_is_one_mib() -> None:
    assert MAX_BODY_BYTES == 2**20


@pytest.mark.parametrize(
    ("url", "content_type"),
    [
        ("/api/modules?name=alice/big", "application/yaml"),
        ("/api/tokens", "application/json"),
        ("/login", "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_over_the_cap_is_413(
    client: TestClient, web_world: WebWorld, url: str, content_type: str
) -> None:
    body = b"kind: image\n#" + b"x" * MAX_BODY_BYTES
    headers = {**web_world.headers("alice"), "Content-Type": content_type}
    response = client.post(url, content=body, headers=headers)
    assert problem(response, 413)["detail"] == "a request body is at most 1048576 bytes"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        client.get("/api/modules/alice/big", headers=web_world.headers("alice")).status_code == 404
    )


def test_a_body_at_the_cap_is_read(client: TestClient, web_world: WebWorld) -> None:
    body = b"kind: image\n#" + b"x" * (MAX_BODY_BYTES - 100) + b"\n"
    response = client.post(
        "/api/modules?name=alice/big", content=body, headers=web_world.headers("alice")
    )
    assert response.status_code == 201, response.text


class Call:
    """One request straight to the ASGI application, its body served in
    chunks as the application asks for them."""

    def __init__(self, app: Any, headers: dict[str, str], chunks: Iterator[bytes]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        self.chunks = chunks
        self.pulled = 0  # bytes the application read
        self.status: int | None = None
        self.body = b""

    async def receive(self) -> dict[str, Any]:
        chunk = next(self.chunks, None)
        if chunk is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        self.pulled += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        elif message["type"] == "http.response.body":
            self.body += message.get("body", b"")

    def post(self, path: str, query: str = "") -> Call:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver"), *self.headers],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }

        async def run() -> None:
            await self.app(scope, self.receive, self.send)

        anyio.run(run)
        return self


def endless() -> Iterator[bytes]:
    while True:
        yield b"#" * CHUNK


def test_a_chunked_body_is_refused_once_past_the_cap_without_reading_the_rest(
    web_world: WebWorld,
) -> None:
    headers = {**web_world.headers("alice"), "Content-Type": "application/yaml"}
    call = Call(web_world.app, headers, endless()).post("/api/modules", "name=alice/endless")
    assert call.status == 413, call.body
    assert MAX_BODY_BYTES < call.pulled <= MAX_BODY_BYTES + CHUNK


def test_a_declared_length_over_the_cap_is_refused_before_anything_is_read(
    web_world: WebWorld,
) -> None:
    headers = {
        **web_world.headers("alice"),
        "Content-Type": "application/yaml",
        "Content-Length": str(10 * MAX_BODY_BYTES),
    }
    call = Call(web_world.app, headers, endless()).post("/api/modules", "name=alice/big")
    assert call.status == 413
    assert call.pulled == 0
