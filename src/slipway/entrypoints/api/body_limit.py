"""Request bodies are capped before they are read.

A body whose ``Content-Length`` is over the cap is answered 413 before the
application sees the request; a body sent in chunks (no length) is counted as
it arrives, and the request is refused as soon as it passes the cap, without
reading the rest. A definition, the biggest body any endpoint takes, is at
most :data:`MAX_BODY_BYTES` too.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from slipway.adapters.definitions.yaml_source import MAX_DEFINITION_BYTES
from slipway.entrypoints.api.problems import problem_response

__all__ = ["MAX_BODY_BYTES", "BodyLimit"]

MAX_BODY_BYTES = MAX_DEFINITION_BYTES
"""Bytes of a request body: 1 MiB."""


class BodyLimit:
    """ASGI middleware: refuse bodies over ``max_bytes`` with 413."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    @property
    def detail(self) -> str:
        return f"a request body is at most {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_over(scope, self.max_bytes):
            response = problem_response(413, self.detail, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised inside the endpoint that reads the body, so the
                    # one error mapping (problems.py) answers it.
                    raise HTTPException(413, self.detail, headers={"Connection": "close"})
            return message

        await self.app(scope, counted, send)


def _declared_over(scope: Scope, limit: int) -> bool:
    """Whether the request's ``Content-Length`` says more than ``limit`` bytes."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.strip()
            return text.isdigit() and (len(text) > 18 or int(text) > limit)
    return False
