"""The one place where errors become HTTP responses: RFC 9457 problem
details (``application/problem+json``) with the field path of each problem.

Every :class:`~slipway.errors.SlipwayError` maps to a status by its class;
request validation is 422 with one entry per field; anything unexpected is a
500 that says nothing about the internals (and is logged). The OpenAPI
document says so: every operation may answer a 4xx or 5xx problem.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.responses import Response

from slipway.errors import (
    CloudError,
    Conflict,
    DefinitionError,
    DefinitionErrors,
    Gone,
    ImageListRejected,
    InputError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RefusedReference,
    SlipwayError,
    ToolError,
    TooManyAttempts,
    Unsupported,
)

__all__ = ["STATUS", "install", "problem_response", "status_of"]

log = logging.getLogger("slipway.api")

MEDIA_TYPE = "application/problem+json"

# Most specific first: the first class an error is an instance of wins.
STATUS: tuple[tuple[type[SlipwayError], int], ...] = (
    (TooManyAttempts, 429),
    (NotAuthenticated, 401),
    (PermissionDenied, 403),
    (Gone, 410),
    (NotFound, 404),
    (Conflict, 409),
    (InputError, 422),
    (ImageListRejected, 422),
    (Unsupported, 501),
    (CloudError, 502),
    (ToolError, 500),
    (SlipwayError, 500),
)

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Permission denied",
    404: "Not found",
    405: "Method not allowed",
    410: "Gone",
    409: "Conflict",
    413: "Request too large",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    501: "Not implemented",
    502: "A cloud refused",
}


def status_of(error: SlipwayError) -> int:
    return next(status for cls, status in STATUS if isinstance(error, cls))


def _type(status: int) -> str:
    return "/problems/" + TITLES.get(status, "error").lower().replace(" ", "-")


def problem_response(
    status: int,
    detail: str,
    *,
    errors: list[dict[str, Any]] | None = None,
    hint: str | None = None,
    headers: Mapping[str, str] | None = None,
    retry_after: int | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": _type(status),
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    if hint:
        body["hint"] = hint
    if errors:
        body["errors"] = errors
    if retry_after is not None:
        body["retry_after"] = retry_after
        headers = {**(headers or {}), "Retry-After": str(retry_after)}
    return JSONResponse(
        body, status_code=status, media_type=MEDIA_TYPE, headers=dict(headers or {})
    )


def _definition_errors(error: DefinitionError | RefusedReference) -> list[dict[str, Any]]:
    found: list[DefinitionError] | list[RefusedReference]
    if isinstance(error, RefusedReference):
        found = error.errors
    else:
        found = error.errors if isinstance(error, DefinitionErrors) else [error]
    return [
        {
            "path": e.location.key or "",
            "line": e.location.line,
            "file": e.location.file,
            "message": e.problem,
        }
        for e in found
    ]


HtmlRenderer = Callable[[Request, int, str, str | None], Response]
"""Renders an error as a dashboard page: (request, status, detail, hint)."""


def _wants_html(request: Request) -> bool:
    return not request.url.path.startswith("/api") and "text/html" in request.headers.get(
        "accept", ""
    )


async def _slipway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SlipwayError)
    status = status_of(exc)
    retry_after = exc.retry_after if isinstance(exc, TooManyAttempts) else None
    renderer: HtmlRenderer | None = getattr(request.app.state, "html_errors", None)
    if renderer is not None and _wants_html(request):
        # The page shows who is logged in: a store call, off the event loop.
        page = await run_in_threadpool(renderer, request, status, exc.message, exc.hint)
        if retry_after is not None:
            page.headers["Retry-After"] = str(retry_after)
        return page
    if status >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    errors: list[dict[str, Any]] | None = None
    if isinstance(exc, DefinitionError | RefusedReference):
        errors = _definition_errors(exc)
    elif isinstance(exc, InputError) and exc.field:
        errors = [{"path": exc.field, "message": exc.message}]
    elif isinstance(exc, ImageListRejected):
        path = exc.field or "body"
        errors = [
            {"path": path, "reason": reason, "message": detail} for reason, detail in exc.problems
        ]
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return problem_response(
        status, exc.message, errors=errors, hint=exc.hint, headers=headers, retry_after=retry_after
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"path": ".".join(str(part) for part in e.get("loc", ())), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    first = errors[0] if errors else {"path": "", "message": "invalid request"}
    return problem_response(422, f"{first['path']}: {first['message']}", errors=errors)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    renderer: HtmlRenderer | None = getattr(request.app.state, "html_errors", None)
    if renderer is not None and _wants_html(request):
        return await run_in_threadpool(renderer, request, exc.status_code, str(exc.detail), None)
    return problem_response(exc.status_code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    return problem_response(500, "an unexpected error; the server log has the details")


_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "RFC 9457 problem details",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "hint": {"type": "string", "description": "what to do"},
        "retry_after": {"type": "integer", "description": "seconds to wait (429)"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {
                    "path": {"type": "string", "description": "query.…, path.…, body.… or a key"},
                    "message": {"type": "string"},
                    "line": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
                    "file": {"type": "string"},
                    "reason": {
                        "type": "string",
                        "description": "an image list's rejection code (digest-mismatch …)",
                    },
                },
            },
        },
    },
}


def _problems_documented(schema: dict[str, Any]) -> None:
    """Declare the problem responses every operation may give, in place of
    FastAPI's own 422 body, which this API never sends."""
    content = {MEDIA_TYPE: {"schema": _PROBLEM_REF}}
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = PROBLEM_SCHEMA
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status[0] in "45":
                    response["content"] = content
            responses.setdefault("4XX", {"description": "Refused: a problem", "content": content})
            responses.setdefault("5XX", {"description": "Failed: a problem", "content": content})


def install(app: FastAPI) -> None:
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _problems_documented(plain_openapi())  # FastAPI keeps it in app.openapi_schema
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_exception_handler(SlipwayError, _slipway_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
