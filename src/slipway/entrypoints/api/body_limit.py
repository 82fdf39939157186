"""Request bodies are capped before they are read.

A body whose ``Content-Length`` is over the cap is answered 413 before the
application sees the request; a body sent in chunks (no length) is counted as
it arrives, and the request is refused as soon as it passes the cap, without
reading the rest. A definition, the biggest body most endpoints take, is at
most :data:`MAX_BODY_BYTES` too; the routes named in ``larger`` (an image
import) have caps of their own.
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

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int = MAX_BODY_BYTES,
        larger: dict[tuple[str, str], int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get((scope["method"], scope["path"]), self.max_bytes)
        detail = f"a request body is at most {limit} bytes"
        if _declared_over(scope, limit):
            response = problem_response(413, detail, headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Raised inside the endpoint that reads the body, so the
                    # one error mapping (problems.py) answers it.
                    raise HTTPException(413, detail, headers={"Connection": "close"})
            return message

        await self.app(scope, counted, send)


def _declared_over(scope: Scope, limit: int) -> bool:
    """Whether the request's ``Content-Length`` says more than ``limit`` bytes."""
    for key, value in scope.get("headers", ()):
        if key == b"content-length":
            text = value.strip()
            return text.isdigit() and (len(text) > 18 or int(text) > limit)
    return False
