"""Provider sync (DESIGN.md §10): a subscription keeps one cloud's images
equal to a VO's image list.

A :class:`Subscription` names the cloud, where the list is fetched, whom to
trust, and which project each VO's images are shared with. Every native
image a subscription made is a :class:`SyncedImage`, keyed by the list
image's identifier and a hash of the fields that make the image what it is
(:func:`fields_hash`): a changed file gives a new native image, a changed
description does not. :func:`plan_sync` compares what the list wants with
what the cloud holds; the service carries the plan out.

An image that leaves the list (or expires) is hidden first and deleted only
after a grace period, once no machine uses it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from slipway.domain.imagelists import ImageList, ListedImage, glance_os_distro

__all__ = [
    "DEFAULT_GRACE",
    "DEFAULT_INTERVAL",
    "ImageState",
    "ListAcceptance",
    "PlannedUpload",
    "Subscription",
    "SyncOutcome",
    "SyncPlan",
    "SyncRecord",
    "SyncStep",
    "SyncedImage",
    "appliance_key",
    "fields_hash",
    "image_properties",
    "is_oci_source",
    "plan_sync",
    "subscription_name_problem",
    "sync_key",
]

DEFAULT_INTERVAL = timedelta(hours=3)
DEFAULT_GRACE = timedelta(days=1)
MIN_INTERVAL = timedelta(minutes=5)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")

SYNC_KEY = "slipway:sync"
"""The property that marks a native image as one a subscription made."""
ESSENTIAL_PROPERTIES = (SYNC_KEY, "appdb_id")
"""What a sync needs on an image to find it again, on clouds that keep little."""

_IDENTITY_FIELDS = (
    "identifier", "uri", "size", "sha512", "format", "version", "title", "hypervisor",
    "arch", "os", "os_name", "os_version", "mpuri", "appid",
)  # fmt: skip
"""The fields that make a native image what it is: a change in any of them
gives a new one. (A new expiry or description changes nothing on the cloud.)"""


def is_oci_source(source: str) -> bool:
    """Whether ``source`` is an OCI repository rather than an image list's URL."""
    return source[:6].lower() == "oci://"


def subscription_name_problem(name: str) -> str | None:
    if not _NAME.match(name):
        return (
            f"subscription name {name!r} must be 1-63 lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter or digit"
        )
    return None


@dataclass(frozen=True)
class Subscription:
    """One cloud kept equal to one image list.

    ``source`` is the list's ``https://`` URL, or an OCI repository
    (``oci://host/repository[:tag]``, see :func:`is_oci_source`);
    ``endorser_dn``/``endorser_ca`` are the trusted signer of a list and its
    issuer in slash form (empty for an OCI repository, which signs nothing);
    ``vo`` is the VO an OCI repository's images are of (a list names its
    own); ``projects`` maps a VO to the project its images are shared with;
    ``only`` is an optional shell pattern an image's title, appliance or
    identifier must match to be synced."""

    name: str
    cloud: str
    source: str
    endorser_dn: str
    owner: str
    created_at: datetime
    endorser_ca: str | None = None
    vo: str | None = None
    ca_dir: str = "/etc/grid-security/certificates"
    projects: tuple[tuple[str, str], ...] = ()
    interval: timedelta = DEFAULT_INTERVAL
    grace: timedelta = DEFAULT_GRACE
    only: str | None = None
    next_at: datetime | None = None

    def project_of(self, vo: str | None) -> str | None:
        return dict(self.projects).get(vo or "")

    def wants(self, image: ListedImage) -> bool:
        if not self.only:
            return True
        names = (image.title, appliance_key(image), image.identifier)
        return any(fnmatch.fnmatchcase(n, self.only) for n in names)


@dataclass(frozen=True)
class ListAcceptance:
    """What a subscription last accepted: the list's identity, the exact
    bytes (kept for a ``304 Not Modified``) and the validators for the next
    conditional GET."""

    identifier: str
    version: str
    digest: str
    message: bytes
    etag: str | None = None
    last_modified: str | None = None
    accepted_at: datetime | None = None


class ImageState(StrEnum):
    PENDING = "pending"  # to be uploaded (again): a sync started it, none finished
    ACTIVE = "active"  # on the cloud, visible, what the list wants
    HIDDEN = "hidden"  # no longer wanted: hidden, deleted once unused after the grace
    DELETED = "deleted"  # gone from the cloud; kept as history
    FAILED = "failed"  # the last try failed (``error`` says why); the next sync retries


@dataclass(frozen=True)
class SyncedImage:
    """One native image a subscription keeps (or kept) on its cloud."""

    key: str
    subscription: str
    identifier: str
    fields_hash: str
    appliance: str
    vo: str | None
    version: str
    list_version: str
    title: str
    sha512: str
    size: int
    state: ImageState
    updated_at: datetime
    native_id: str | None = None
    error: str | None = None
    attempts: int = 0
    synced_at: datetime | None = None
    hidden_at: datetime | None = None


def fields_hash(image: ListedImage) -> str:
    """SHA-256 of the fields that make the image what it is, as canonical JSON."""
    fields = {name: getattr(image, name) for name in _IDENTITY_FIELDS}
    if image.digest is not None:  # only then: the hashes of list images stay what they were
        fields["digest"] = image.digest
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def sync_key(subscription: str, identifier: str, hashed: str) -> str:
    """The mark a native image carries: the same for the same image of the
    same subscription, so a sync that was killed finds what it left."""
    return hashlib.sha256(f"{subscription}\0{identifier}\0{hashed}".encode()).hexdigest()[:32]


def appliance_key(image: ListedImage) -> str:
    """How a definition names the image's appliance: ``ad:appid`` (the
    appliance's name in Slipway's lists), else the image's identifier."""
    return image.appid or image.identifier


def image_properties(
    image: ListedImage, image_list: ImageList, subscription: str, key: str
) -> dict[str, str]:
    """The properties a synced native image carries: Slipway's mark, the
    appliance and list identifiers, the standard OS keys, and the keys atrope
    sets (so a site moving from atrope keeps its images recognised)."""
    attributes = {
        "dc:identifier": image.identifier, "dc:title": image.title, "hv:uri": image.uri,
        "hv:size": image.size, "sl:checksum:sha512": image.sha512, "hv:version": image.version,
        "hv:format": image.format, "sl:arch": image.arch, "sl:osname": image.os_name,
        "sl:osversion": image.os_version, "ad:mpuri": image.mpuri, "ad:appid": image.appid,
    }  # fmt: skip
    properties = {
        SYNC_KEY: key,
        "slipway:subscription": subscription,
        "ad:mpuri": image.mpuri,
        "hv:version": image.version,
        "hv:imagelist": image_list.identifier,
        "hv:imagelist:version": image_list.version,
        "os_distro": glance_os_distro(image.os_name),
        "os_version": image.os_version,
        "architecture": image.arch,
        "appdb_id": image.identifier,
        "sha512": image.sha512,
        "image_hash": image.sha512,
        "image_list": image_list.identifier,
        "vmcatcher_event_ad_mpuri": image.mpuri,
        "APPLIANCE_ATTRIBUTES": json.dumps(
            {k: v for k, v in attributes.items() if v not in (None, "")}, sort_keys=True
        ),
    }
    return {k: str(v) for k, v in properties.items() if v not in (None, "")}


@dataclass(frozen=True)
class PlannedUpload:
    """A listed image to put on the cloud; ``row`` is its record when an
    earlier sync started it, ``replaces`` the active image it supersedes."""

    image: ListedImage
    key: str
    fields_hash: str
    row: SyncedImage | None = None
    replaces: SyncedImage | None = None


@dataclass(frozen=True)
class SyncPlan:
    """What one sync does: upload, keep, hide (no longer listed), and
    consider for deletion (hidden for longer than the grace period)."""

    upload: tuple[PlannedUpload, ...] = ()
    keep: tuple[SyncedImage, ...] = ()
    hide: tuple[SyncedImage, ...] = ()
    purge: tuple[SyncedImage, ...] = ()


def plan_sync(
    subscription: Subscription,
    wanted: tuple[ListedImage, ...],
    held: tuple[SyncedImage, ...],
    now: datetime,
) -> SyncPlan:
    """Compare the listed images a subscription wants with what it holds.

    An image listed with the same fields as an active one is kept; any other
    listed image is uploaded (an earlier record of it reused). An
    active image no longer listed at all is hidden; one whose listed fields
    changed is hidden by the service only once its replacement is up.
    """
    rows = {(h.identifier, h.fields_hash): h for h in held}  # one record per key
    active_by_id = {h.identifier: h for h in held if h.state is ImageState.ACTIVE}
    uploads: list[PlannedUpload] = []
    keep: list[SyncedImage] = []
    listed_ids: set[str] = set()
    for image in wanted:
        hashed = fields_hash(image)
        listed_ids.add(image.identifier)
        row = rows.get((image.identifier, hashed))
        if row is not None and row.state is ImageState.ACTIVE:
            keep.append(row)
            continue
        current = active_by_id.get(image.identifier)
        uploads.append(
            PlannedUpload(
                image,
                sync_key(subscription.name, image.identifier, hashed),
                hashed,
                row=row,
                replaces=current,
            )
        )
    hide = tuple(h for h in held if h.state is ImageState.ACTIVE and h.identifier not in listed_ids)
    purge = tuple(
        h
        for h in held
        if h.state is ImageState.HIDDEN
        and h.hidden_at is not None
        and h.hidden_at + subscription.grace <= now
    )
    return SyncPlan(tuple(uploads), tuple(keep), hide, purge)


class SyncOutcome(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # the cloud matches the list
    PARTIAL = "partial"  # some images failed; the rest is synced
    REJECTED = "rejected"  # the list failed verification: nothing changed
    FAILED = "failed"  # the sync stopped (fetch failed, cloud unreachable …)
    UNCHANGED = "unchanged"  # the list was not modified and nothing was to do


@dataclass(frozen=True)
class SyncStep:
    """One thing a sync did, for the history: ``step`` e.g. ``fetch``,
    ``verify``, ``download``, ``upload``, ``hide``, ``delete``; ``image`` the
    list image's identifier where it is about one."""

    step: str
    outcome: str  # ok | failed | skipped
    seconds: float = 0.0
    image: str | None = None
    title: str | None = None
    bytes: int = 0
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {
            "step": self.step,
            "outcome": self.outcome,
            "seconds": round(self.seconds, 3),
            "image": self.image,
            "title": self.title,
            "bytes": self.bytes,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class SyncRecord:
    """One sync of a subscription, as the history shows it."""

    id: int
    subscription: str
    started_at: datetime
    outcome: SyncOutcome
    trigger: str = "manual"  # manual | schedule
    finished_at: datetime | None = None
    list_identifier: str | None = None
    list_version: str | None = None
    problems: tuple[tuple[str, str], ...] = ()
    steps: tuple[SyncStep, ...] = field(default=())
    worker: str = ""

    @property
    def failed_images(self) -> tuple[SyncStep, ...]:
        return tuple(s for s in self.steps if s.outcome == "failed" and s.image)

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.steps)
