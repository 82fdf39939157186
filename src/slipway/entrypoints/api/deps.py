"""What every request needs: the services (built by the composition root)
and the acting user, from an API token, a dashboard session, or nobody."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request

from slipway.domain.clouds import Cloud
from slipway.errors import NotAuthenticated, NotFound, PermissionDenied
from slipway.imagekit.store import ImageStore
from slipway.services.catalog import CatalogService
from slipway.services.deploy import RunService
from slipway.services.identity import ANONYMOUS, IdentityService
from slipway.services.marketplace import MarketplaceService
from slipway.services.sync import SyncService

__all__ = [
    "SESSION_COOKIE",
    "Actor",
    "Catalog",
    "LoggedIn",
    "Market",
    "Services",
    "User",
    "actor",
    "services",
]

SESSION_COOKIE = "slipway_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Services:
    """The use cases the API and the dashboard call."""

    catalog: Callable[[str], CatalogService]  # the catalog as one user sees it
    identity: IdentityService  # users, groups, passwords, sessions, tokens
    runs: Callable[[str], RunService] | None = None  # None: this server cannot deploy
    cloud_details: Callable[[Cloud], dict[str, str]] = lambda _: {}
    market: Callable[[str], MarketplaceService] | None = None  # None: no marketplace here
    images: ImageStore | None = None  # the local image store
    ca_dir: Path | None = None  # the CAs image lists are verified against
    sync: Callable[[str], SyncService] | None = None  # None: no provider sync here


@dataclass(frozen=True)
class Actor:
    """Who sends this request; ``csrf`` is set for dashboard sessions."""

    user: str
    csrf: str | None = None
    via_session: bool = False

    @property
    def anonymous(self) -> bool:
        return self.user == ANONYMOUS


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def check_csrf(request: Request, expected: str, sent: str | None) -> None:
    if sent is None or not secrets.compare_digest(sent, expected):
        raise PermissionDenied(
            "the form's CSRF token is missing or stale", hint="reload the page and try again"
        )


def actor(request: Request) -> Actor:
    """The acting user: a ``Bearer`` API token wins over a session cookie.
    A session may change things only with the CSRF token in a header (the
    dashboard's forms check their own field)."""
    cached: Actor | None = getattr(request.state, "actor", None)
    if cached is not None:
        return cached
    identity = services(request).identity
    found = Actor(ANONYMOUS)
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        user = identity.token_user(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise NotAuthenticated(
                "the API token is not valid", hint="create one: slipway token create"
            )
        found = Actor(user)
    elif cookie := request.cookies.get(SESSION_COOKIE):
        session = identity.session(cookie)
        if session is not None:
            found = Actor(session.user, session.csrf, via_session=True)
            if request.url.path.startswith("/api") and request.method not in SAFE_METHODS:
                check_csrf(request, session.csrf, request.headers.get(CSRF_HEADER))
    request.state.actor = found
    return found


def logged_in(who: Annotated[Actor, Depends(actor)]) -> Actor:
    if who.anonymous:
        raise NotAuthenticated(
            "log in first", hint="send 'Authorization: Bearer <token>' (slipway token create)"
        )
    return who


User = Annotated[Actor, Depends(actor)]
LoggedIn = Annotated[Actor, Depends(logged_in)]


def catalog(request: Request, who: User) -> CatalogService:
    return services(request).catalog(who.user)


Catalog = Annotated[CatalogService, Depends(catalog)]


def market(request: Request, who: User) -> MarketplaceService:
    factory = services(request).market
    if factory is None:
        raise NotFound("this server has no marketplace")
    return factory(who.user)


Market = Annotated[MarketplaceService, Depends(market)]
