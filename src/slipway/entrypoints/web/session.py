"""Dashboard log-in and log-out, CSRF checks for forms, and page rendering
with the acting user."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from slipway.entrypoints.api.deps import SESSION_COOKIE, Actor, actor, check_csrf, services
from slipway.entrypoints.api.threads import blocking, costly
from slipway.errors import NotAuthenticated, SlipwayError, TooManyAttempts

__all__ = [
    "LOGIN_CSRF_COOKIE",
    "acting",
    "is_admin",
    "page",
    "require_form_csrf",
    "router",
    "templates",
]

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
LOGIN_CSRF_COOKIE = "slipway_login_csrf"

router = APIRouter(include_in_schema=False)


def page(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the acting user and their CSRF token;
    ``is_admin()`` asks the store only when a template wants to know."""
    who = actor(request)
    return templates.TemplateResponse(
        request,
        template,
        {
            "who": who,
            "csrf": who.csrf or "",
            "is_admin": lambda: is_admin(request),
            "has_sync": services(request).sync is not None,
            **context,
        },
        status_code=status,
    )


def is_admin(request: Request) -> bool:
    """Whether the acting user is an administrator, asked once a request."""
    cached: bool | None = getattr(request.state, "admin", None)
    if cached is None:
        who = actor(request)
        cached = not who.anonymous and services(request).identity.whoami(who.user)[0]
        request.state.admin = cached
    return cached


async def acting(request: Request) -> Actor:
    """:func:`~slipway.entrypoints.api.deps.actor` for ``async`` endpoints: it
    looks up a token or session in the store, so it runs in a thread."""
    return await blocking(actor, request)


async def require_form_csrf(request: Request) -> tuple[Actor, dict[str, str]]:
    """The logged-in actor of a form POST, after checking its CSRF field."""
    who = await acting(request)
    if who.anonymous:
        raise NotAuthenticated("log in first")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if who.csrf is not None:
        check_csrf(request, who.csrf, form.get("csrf_token"))
    return who, form


def _safe_next(target: str | None) -> str:
    # Only paths on this site: no open redirect through ?next=.
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/catalog"
    return target


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    token = secrets.token_urlsafe(24)
    response = page(request, "login.html", login_csrf=token, next=_safe_next(next), error=None)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    await acting(request)  # known before any page is rendered
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    next_page = _safe_next(form.get("next"))
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    error: str | None = None
    status, headers = 401, {}
    if not expected or not secrets.compare_digest(expected, form.get("csrf_token", "")):
        error = "The form expired; please try again."
    else:
        try:
            session = await costly(  # a password hash
                request,
                services(request).identity.login,
                form.get("username", "").strip(),
                form.get("password", ""),
                request.client.host if request.client else None,
            )
        except TooManyAttempts as exc:
            error = exc.message.capitalize() + "."
            status, headers = 429, {"Retry-After": str(exc.retry_after)}
        except SlipwayError as exc:
            error = exc.message.capitalize() + "."
        else:
            response = RedirectResponse(next_page, status_code=303)
            response.set_cookie(
                SESSION_COOKIE,
                session.cookie,
                httponly=True,
                samesite="lax",
                secure=request.url.scheme == "https",
                max_age=12 * 3600,
            )
            response.delete_cookie(LOGIN_CSRF_COOKIE)
            return response
    token = secrets.token_urlsafe(24)
    failed = page(
        request,
        "login.html",
        status=status,
        login_csrf=token,
        next=next_page,
        error=error,
        username=form.get("username", ""),
    )
    failed.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict")
    failed.headers.update(headers)
    return failed


@router.post("/logout")
async def logout(request: Request) -> Response:
    await require_form_csrf(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        await blocking(services(request).identity.logout, cookie)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


def login_url(request: Request) -> str:
    return "/login?next=" + quote(request.url.path)
