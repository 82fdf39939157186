"""The ASGI application: the REST API under ``/api``, the dashboard under
``/``, static files, and the error mapping of :mod:`.problems`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from starlette.responses import Response

from slipway.adapters.imagelists.verify import MAX_MESSAGE_BYTES
from slipway.entrypoints.api import (
    clouds,
    images,
    market,
    modules,
    problems,
    runs,
    sync,
    threads,
    users,
)
from slipway.entrypoints.api.body_limit import BodyLimit
from slipway.entrypoints.api.deps import Services

__all__ = ["create_app"]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def create_app(services: Services, *, dashboard: bool = True) -> FastAPI:
    """The API (and unless ``dashboard`` is False, the web pages) over ``services``."""
    app = FastAPI(
        title="Slipway",
        summary="Define a VM image once, deploy it on any cloud.",
        version="0.1.0",
        # Swagger UI and ReDoc load their scripts from a CDN: not offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    problems.install(app)
    threads.install(app)
    for router in (
        modules.router,
        clouds.router,
        users.router,
        runs.router,
        market.router,
        market.public,
        images.router,
        sync.router,
    ):
        app.include_router(router)
    if dashboard:
        from slipway.entrypoints.web import pages

        pages.install(app)
    # Inside the security headers: a 413 has them too. An image import is the
    # one body larger than a definition; it is streamed to disk, never held.
    app.add_middleware(
        BodyLimit,
        larger={
            ("POST", "/api/images"): images.MAX_IMAGE_BYTES,
            ("POST", "/api/imagelists/verify"): MAX_MESSAGE_BYTES,
        },
    )

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for key, value in SECURITY_HEADERS.items():
            response.headers.setdefault(key, value)
        return response

    return app
