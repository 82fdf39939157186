"""Provider sync over HTTP: ``/api/subscriptions`` and ``/api/syncs`` carry
the operations of ``slipway subscription`` and ``slipway sync``, for
administrators only (a subscription acts on a cloud with the provider's own
credentials). The CA directory is always the server's ``ca_dir``: a request
names whom to trust, never a path on the server."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from slipway.domain.sync import MIN_INTERVAL
from slipway.entrypoints.api.deps import Sync
from slipway.entrypoints.api.schemas import NO_NUL
from slipway.entrypoints.sync_json import record_dict, status_dict, subscription_dict
from slipway.services.sync import HISTORY_LIMIT, NewSubscription

__all__ = ["router"]

router = APIRouter(prefix="/api", tags=["provider sync"])

SubscriptionName = Annotated[str, Path(max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")]
Dn = Annotated[str, Field(min_length=4, max_length=1000, pattern=NO_NUL)]
_DAY_S = 86400


class SubscriptionIn(BaseModel):
    """A subscription; unknown fields (``ca_dir`` among them) are refused."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    cloud: str = Field(max_length=200, pattern=NO_NUL)
    source: str = Field(max_length=2000, pattern=r"^(https?|oci)://\S+$")
    endorser_dn: Dn | None = None
    endorser_ca: Dn | None = None
    vo: str | None = Field(default=None, max_length=200, pattern=NO_NUL)
    projects: dict[
        Annotated[str, Field(max_length=253, pattern=NO_NUL)],
        Annotated[str, Field(max_length=200, pattern=NO_NUL)],
    ] = Field(default_factory=dict, max_length=100)
    interval_s: int = Field(default=3 * 3600, ge=int(MIN_INTERVAL.total_seconds()), le=366 * _DAY_S)
    grace_s: int = Field(default=_DAY_S, ge=0, le=366 * _DAY_S)
    only: str | None = Field(default=None, max_length=200, pattern=NO_NUL)


@router.get("/subscriptions", summary="Every subscription at a glance (administrators)")
def list_subscriptions(service: Sync) -> list[dict[str, Any]]:
    return [status_dict(service.status(s.name)) for s in service.subscriptions()]


@router.post("/subscriptions", status_code=201, summary="Subscribe a cloud to an image list")
def add_subscription(body: SubscriptionIn, service: Sync) -> dict[str, Any]:
    made = service.add(
        NewSubscription(
            name=body.name,
            cloud=body.cloud,
            source=body.source,
            endorser_dn=body.endorser_dn,
            endorser_ca=body.endorser_ca,
            vo=body.vo,
            projects=tuple(sorted(body.projects.items())),
            interval=timedelta(seconds=body.interval_s),
            grace=timedelta(seconds=body.grace_s),
            only=body.only,
        )
    )
    return subscription_dict(made)


@router.get("/subscriptions/{name}", summary="A subscription: its list, images and recent syncs")
def show_subscription(name: SubscriptionName, service: Sync) -> dict[str, Any]:
    return status_dict(service.status(name))


@router.delete("/subscriptions/{name}", status_code=204, summary="Delete a subscription")
def remove_subscription(
    name: SubscriptionName,
    service: Sync,
    forget: Annotated[bool, Query(description="even though it keeps images")] = False,
) -> Response:
    service.remove(name, forget=forget)
    return Response(status_code=204)


@router.post(
    "/subscriptions/{name}/sync",
    status_code=202,
    summary="Have a worker sync the subscription within seconds",
)
def request_sync(name: SubscriptionName, service: Sync) -> dict[str, Any]:
    service.request(name)
    return {"requested": name}


@router.get("/syncs", summary="Past syncs, newest first")
def list_syncs(
    service: Sync,
    subscription: Annotated[
        str | None, Query(max_length=63, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=HISTORY_LIMIT)] = 50,
) -> list[dict[str, Any]]:
    return [record_dict(r, steps=False) for r in service.history(subscription, limit)]


@router.get("/syncs/{sync_id}", summary="One sync with every step it took")
def show_sync(sync_id: Annotated[int, Path(ge=1, le=2**31 - 1)], service: Sync) -> dict[str, Any]:
    return record_dict(service.record(sync_id))
