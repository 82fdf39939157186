"""Subscriptions, synced images and syncs as JSON: one shape for the
command line's ``--output json`` and the API."""

from __future__ import annotations

import re
import urllib.parse
from datetime import timedelta
from typing import Any

from slipway.domain.sync import Subscription, SyncedImage, SyncRecord
from slipway.errors import InputError
from slipway.services.sync import SubscriptionStatus

__all__ = [
    "image_dict",
    "parse_duration",
    "record_dict",
    "shown_source",
    "status_dict",
    "subscription_dict",
]

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, field: str) -> timedelta:
    """``90``, ``90s``, ``15m``, ``3h`` or ``2d``."""
    match = _DURATION.match(text.strip().lower())
    if match is None:
        raise InputError(f"{field} {text!r} is not a duration like 90s, 15m, 3h or 2d", field=field)
    return timedelta(seconds=int(match[1]) * _UNITS[match[2]])


def shown_source(source: str) -> str:
    """The list's URL without any user name or password in it."""
    parts = urllib.parse.urlsplit(source)
    if parts.username is None and parts.password is None:
        return source
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def subscription_dict(s: Subscription) -> dict[str, Any]:
    return {
        "name": s.name,
        "cloud": s.cloud,
        "source": shown_source(s.source),
        "endorser_dn": s.endorser_dn,
        "endorser_ca": s.endorser_ca,
        "vo": s.vo,
        "ca_dir": s.ca_dir,
        "projects": dict(s.projects),
        "interval_s": int(s.interval.total_seconds()),
        "grace_s": int(s.grace.total_seconds()),
        "only": s.only,
        "owner": s.owner,
        "created_at": s.created_at,
        "next_at": s.next_at,
    }


def image_dict(i: SyncedImage) -> dict[str, Any]:
    return {
        "identifier": i.identifier,
        "title": i.title,
        "appliance": i.appliance,
        "vo": i.vo,
        "version": i.version,
        "list_version": i.list_version,
        "state": i.state.value,
        "native_id": i.native_id,
        "sha512": i.sha512,
        "size": i.size,
        "error": i.error,
        "attempts": i.attempts,
        "synced_at": i.synced_at,
        "hidden_at": i.hidden_at,
        "updated_at": i.updated_at,
    }


def record_dict(r: SyncRecord, *, steps: bool = True) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": r.id,
        "subscription": r.subscription,
        "outcome": r.outcome.value,
        "trigger": r.trigger,
        "worker": r.worker,
        "started_at": r.started_at,
        "finished_at": r.finished_at,
        "list_identifier": r.list_identifier,
        "list_version": r.list_version,
        "problems": [{"reason": reason, "detail": detail} for reason, detail in r.problems],
        "bytes": r.bytes,
        "failed_images": len(r.failed_images),
    }
    if steps:
        data["steps"] = [s.to_dict() for s in r.steps]
    return data


def status_dict(status: SubscriptionStatus) -> dict[str, Any]:
    accepted = status.accepted
    last = status.last_success
    return {
        **subscription_dict(status.subscription),
        "list": None
        if accepted is None
        else {
            "identifier": accepted.identifier,
            "version": accepted.version,
            "accepted_at": accepted.accepted_at,
        },
        "syncing": status.syncing,
        "last_success": None if last is None else last.finished_at,
        "behind": status.behind,
        "failing": [i.identifier for i in status.failing],
        "images": [image_dict(i) for i in status.images],
        "recent": [record_dict(r, steps=False) for r in status.recent],
    }
