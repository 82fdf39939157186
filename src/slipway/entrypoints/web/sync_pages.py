"""The dashboard's Sync pages, for a provider's operators (administrators):
every subscription at a glance with its lag, one subscription's settings,
images and recent syncs, one sync's steps, and "Sync now".

Names, titles and error messages come from image lists on the internet;
the templates show them through Jinja's autoescaping only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.responses import Response

from slipway.domain.sync import ImageState, SyncOutcome
from slipway.entrypoints.api.deps import actor, services
from slipway.entrypoints.api.threads import blocking
from slipway.entrypoints.sync_json import shown_source
from slipway.entrypoints.web.session import page, require_form_csrf
from slipway.errors import NotAuthenticated, NotFound
from slipway.services.sync import SubscriptionStatus, SyncService

__all__ = ["Lag", "lag_of", "router"]

router = APIRouter(include_in_schema=False)

SubscriptionName = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
SyncId = Annotated[int, Path(ge=1, le=2**62)]
RECENT = 20


@dataclass(frozen=True)
class Lag:
    """How far a subscription's cloud is from its list: ``kind`` names the
    badge (syncing, failing, behind, never, in-sync), ``text`` says it."""

    kind: str
    text: str


def lag_of(status: SubscriptionStatus) -> Lag:
    """The one thing an operator should know first about a subscription:
    a sync under way, failing images, images behind the list, or none."""
    if status.syncing is not None:
        return Lag("syncing", f"syncing now ({status.syncing})")
    if status.failing:
        return Lag("failing", f"failing: {len(status.failing)} image(s)")
    accepted = status.accepted
    if accepted is None:
        return Lag("never", "never synced")
    behind = [
        i
        for i in status.images
        if i.state is ImageState.PENDING
        or (i.state is ImageState.ACTIVE and i.list_version != accepted.version)
    ]
    if behind:
        return Lag(
            "behind", f"behind: {len(behind)} image(s) not at list version {accepted.version}"
        )
    last = status.recent[0] if status.recent else None
    if last is not None and last.outcome in (SyncOutcome.FAILED, SyncOutcome.REJECTED):
        return Lag("failing", f"failing: the last sync {last.outcome.value}")
    return Lag("in-sync", "in sync")


def duration(value: timedelta) -> str:
    """``value`` in the largest unit that divides it: 3 h, 15 min, 1 d, 90 s."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def size(value: int) -> str:
    """A byte count for people: 0 B, 64.0 KiB, 16.5 MiB."""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} TiB"


def _sync(request: Request, user: str | None = None) -> SyncService:
    """The sync service as the acting user; the service itself refuses
    anybody but an administrator."""
    who = actor(request)
    if who.anonymous:
        raise NotAuthenticated("log in to see the provider sync")
    factory = services(request).sync
    if factory is None:
        raise NotFound("this server has no provider sync")
    return factory(user or who.user)


def _statuses(service: SyncService) -> list[SubscriptionStatus]:
    found = []
    for subscription in service.subscriptions():
        try:
            found.append(service.status(subscription.name))
        except NotFound:  # removed since the list was read
            continue
    return found


@router.get("/sync", response_class=HTMLResponse)
def sync_page(request: Request, requested: Annotated[str, Query(max_length=63)] = "") -> Response:
    statuses = _statuses(_sync(request))
    names = {s.subscription.name for s in statuses}
    return page(
        request,
        "sync.html",
        rows=[(s, lag_of(s)) for s in statuses],
        requested=requested if requested in names else None,
    )


@router.get("/sync/runs/{sync_id}", response_class=HTMLResponse)
def sync_record_page(request: Request, sync_id: SyncId) -> Response:
    record = _sync(request).record(sync_id)
    return page(request, "sync_record.html", record=record, size=size)


@router.get("/sync/{name}", response_class=HTMLResponse)
def subscription_page(
    request: Request, name: SubscriptionName, requested: Annotated[str, Query(max_length=3)] = ""
) -> Response:
    status = _sync(request).status(name)
    return page(
        request,
        "sync_subscription.html",
        view=status,
        lag=lag_of(status),
        source=shown_source(status.subscription.source),
        recent=status.recent[:RECENT],
        requested=requested == "yes",
        duration=duration,
        size=size,
    )


@router.post("/sync/{name}/request")
async def request_sync(request: Request, name: SubscriptionName) -> Response:
    """Sync now: the subscription's next sync is due at once, and a worker
    takes it within seconds. Back to the page the button was on."""
    who, form = await require_form_csrf(request)
    service = _sync(request, who.user)
    await blocking(service.request, name)
    if form.get("back") == "subscription":
        return RedirectResponse(f"/sync/{quote(name)}?requested=yes", status_code=303)
    return RedirectResponse(f"/sync?requested={quote(name)}", status_code=303)
