"""Provider sync (DESIGN.md §10): subscriptions, and the sync that keeps a
cloud's images equal to a verified image list.

One sync of a subscription, under its lease (one worker at a time; the
steps are in ``services/sync_run.py``):

1. fetch the list with a conditional GET (a ``304`` re-uses the bytes last
   accepted); verify it — nothing changes on the cloud when it fails;
2. plan against the images the subscription holds (``domain/sync.py``);
3. for each new or changed image: record it ``pending`` first, then look on
   the cloud for what an interrupted sync left under its mark (adopt a
   finished, visible image; delete a half one), else download it once into
   the cache (resumed, hashed as it streams), convert it to qcow2 if needed,
   upload it hidden with its properties (or have the cloud fetch it), share
   it with the VO's project, and record it ``active``;
4. hide the images the list dropped; delete hidden ones after the grace
   period, and only when no machine on the cloud uses them.

Every step goes into the sync's history with its bytes, time and the
cloud's or the verifier's own message; one image failing does not stop the
others, and the next sync retries it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from slipway.connectors.base import Connector, supports
from slipway.domain.endorsers import DistinguishedName
from slipway.domain.machines import Capability
from slipway.domain.marketplace import vo_name_problem
from slipway.domain.sync import (
    MIN_INTERVAL,
    ImageState,
    ListAcceptance,
    Subscription,
    SyncedImage,
    SyncOutcome,
    SyncRecord,
    is_oci_source,
    subscription_name_problem,
)
from slipway.errors import (
    Conflict,
    InputError,
    NotFound,
    PermissionDenied,
    Unsupported,
)
from slipway.services.identity import access_of
from slipway.services.ports import SyncUnitOfWork
from slipway.services.sync_run import (
    LEASE,
    AcceptedList,
    CachedImage,
    FetchedList,
    ImageFiles,
    ListReader,
    Progress,
    SyncParts,
    SyncRun,
)

__all__ = [
    "HISTORY_LIMIT",
    "AcceptedList",
    "CachedImage",
    "FetchedList",
    "ImageFiles",
    "ListReader",
    "NewSubscription",
    "Progress",
    "SubscriptionStatus",
    "SyncService",
]

HISTORY_LIMIT = 200


@dataclass(frozen=True)
class NewSubscription:
    name: str
    cloud: str
    source: str
    endorser_dn: str | None = None
    endorser_ca: str | None = None
    vo: str | None = None
    ca_dir: str | None = None
    projects: tuple[tuple[str, str], ...] = ()
    interval: timedelta | None = None
    grace: timedelta | None = None
    only: str | None = None


class SyncService:
    """Subscriptions and syncs, as ``user`` may see and change them: a
    provider's operators (admins) do everything; other users see nothing."""

    def __init__(
        self,
        uow: Callable[[], SyncUnitOfWork],
        user: str,
        *,
        connectors: Callable[[str], Connector],
        clouds: Callable[[], Sequence[str]],
        reader: ListReader,
        files: ImageFiles,
        worker: str,
        default_ca_dir: str,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self.user = user
        self._connectors = connectors
        self._clouds = clouds
        self._worker = worker
        self._default_ca_dir = default_ca_dir
        self._now = now
        self._parts = SyncParts(uow, connectors, reader, files, worker, now)

    # -- rights ------------------------------------------------------------------------

    def _require_admin(self, uow: SyncUnitOfWork) -> None:
        if not access_of(uow.identity, self.user).admin:
            raise PermissionDenied(
                "only an administrator (the provider's operator) manages subscriptions and syncs",
                hint="ask an administrator of this Slipway",
            )

    # -- subscriptions -----------------------------------------------------------------

    def add(self, new: NewSubscription) -> Subscription:
        with self._uow() as uow:  # rights first: a source is not even resolved for others
            self._require_admin(uow)
        problem = subscription_name_problem(new.name)
        if problem:
            raise InputError(problem, field="name")
        self._parts.reader.check_source(new.source)
        _check_trust(new)
        for field, value in (("endorser_dn", new.endorser_dn), ("endorser_ca", new.endorser_ca)):
            if value is not None:
                try:
                    DistinguishedName.from_slash(value)
                except ValueError as exc:
                    raise InputError(str(exc), field=field) from None
        interval = new.interval or Subscription.interval
        if interval < MIN_INTERVAL:
            raise InputError(
                f"interval must be at least {int(MIN_INTERVAL.total_seconds() // 60)} minutes",
                field="interval",
            )
        with self._uow() as uow:
            self._require_admin(uow)
            if new.cloud not in self._clouds():
                raise NotFound(f"there is no cloud {new.cloud!r}", hint="slipway clouds list")
            connector = self._connectors(new.cloud)
            if not (
                supports(connector, Capability.IMAGE_UPLOAD)
                or supports(connector, Capability.IMAGE_FROM_URL)
            ):
                raise Unsupported(connector.unsupported[Capability.IMAGE_UPLOAD], cloud=new.cloud)
            if is_oci_source(new.source) and not supports(connector, Capability.IMAGE_UPLOAD):
                raise Unsupported(
                    f"{new.cloud} fetches images from a URL itself, and an OCI repository's "
                    "files are not at one it can fetch: subscribe it to an image list",
                    cloud=new.cloud,
                )
            if new.projects and not supports(connector, Capability.IMAGE_SHARING):
                raise Unsupported(
                    f"VO projects: {connector.unsupported[Capability.IMAGE_SHARING]}",
                    cloud=new.cloud,
                )
            subscription = Subscription(
                name=new.name,
                cloud=new.cloud,
                source=new.source,
                endorser_dn=new.endorser_dn or "",
                endorser_ca=new.endorser_ca,
                vo=new.vo,
                ca_dir=new.ca_dir or self._default_ca_dir,
                projects=tuple(sorted(new.projects)),
                interval=interval,
                grace=new.grace if new.grace is not None else Subscription.grace,
                only=new.only,
                owner=self.user,
                created_at=self._now(),
            )
            uow.sync.add_subscription(subscription)
            uow.commit()
        return subscription

    def subscriptions(self) -> list[Subscription]:
        with self._uow() as uow:
            self._require_admin(uow)
            return list(uow.sync.subscriptions())

    def get(self, name: str) -> Subscription:
        with self._uow() as uow:
            self._require_admin(uow)
            return _found(uow, name)

    def status(self, name: str) -> SubscriptionStatus:
        """The subscription at a glance: what it accepted, its images, its last syncs."""
        with self._uow() as uow:
            self._require_admin(uow)
            subscription = _found(uow, name)
            return SubscriptionStatus(
                subscription,
                uow.sync.acceptance(name),
                tuple(uow.sync.images(name)),
                tuple(uow.sync.runs(name, 20)),
                uow.sync.holder(name, self._now()),
            )

    def remove(self, name: str, *, forget: bool = False) -> Subscription:
        """Delete the subscription; while it still keeps images on its cloud
        only with ``forget`` (the images stay there, no longer managed)."""
        with self._uow() as uow:
            self._require_admin(uow)
            subscription = _found(uow, name)
            kept = [
                i
                for i in uow.sync.images(name)
                if i.state in (ImageState.ACTIVE, ImageState.HIDDEN)
            ]
            if kept and not forget:
                raise Conflict(
                    f"{name} keeps {len(kept)} image(s) on {subscription.cloud}",
                    hint="remove them from the list and sync, or use --forget to leave "
                    "them on the cloud unmanaged",
                )
            if uow.sync.holder(name, self._now()) is not None:
                raise Conflict(f"{name} is being synced now; try again when it is done")
            uow.sync.remove_subscription(name)
            uow.commit()
        return subscription

    # -- history -----------------------------------------------------------------------

    def history(self, name: str | None = None, limit: int = 50) -> list[SyncRecord]:
        with self._uow() as uow:
            self._require_admin(uow)
            if name is not None:
                _found(uow, name)
            return list(uow.sync.runs(name, min(max(limit, 1), HISTORY_LIMIT)))

    def record(self, sync_id: int) -> SyncRecord:
        with self._uow() as uow:
            self._require_admin(uow)
            found = uow.sync.run(sync_id)
        if found is None:
            raise NotFound(f"no sync {sync_id}", hint="slipway sync history")
        return found

    def due(self) -> list[str]:
        """Subscriptions whose scheduled sync is due (for the worker's sweeper)."""
        with self._uow() as uow:
            return list(uow.sync.due(self._now()))

    # -- a sync ------------------------------------------------------------------------

    def request(self, name: str) -> Subscription:
        """Have a worker (``slipway worker``, ``slipway serve``) sync the
        subscription within seconds: its next sync is due now."""
        with self._uow() as uow:
            self._require_admin(uow)
            subscription = _found(uow, name)
            uow.sync.schedule(name, self._now())
            uow.commit()
        return subscription

    def run(self, name: str, *, progress: Progress | None = None) -> SyncRecord:
        """Sync the subscription now, in this process. ``Conflict`` when
        another worker is syncing it."""
        with self._uow() as uow:
            self._require_admin(uow)
        return self.run_queued(name, "manual", progress=progress)

    def run_queued(
        self, name: str, trigger: str, *, progress: Progress | None = None
    ) -> SyncRecord:
        """Sync as a worker does, for a task queued by an administrator or by
        the schedule (no rights to check: a worker acts for the provider)."""
        now = self._now()
        with self._uow() as uow:
            subscription = _found(uow, name)
            if not uow.sync.claim(name, self._worker, now, now + LEASE):
                holder = uow.sync.holder(name, now)
                raise Conflict(
                    f"{name} is being synced by {holder or 'another worker'}",
                    hint="slipway sync history shows it when it is done",
                )
            record = SyncRecord(0, name, now, SyncOutcome.RUNNING, trigger, worker=self._worker)
            record = replace(record, id=uow.sync.add_run(record))
            uow.commit()
        run = SyncRun(self._parts, subscription, record, progress)
        try:
            run.go()
        except BaseException as exc:  # a bug or an interrupt: still say so in the history
            run.fail("sync", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            finished = run.finish()
            with self._uow() as uow:
                uow.sync.save_run(finished)
                uow.sync.release(name, self._worker, self._now() + subscription.interval)
                uow.commit()
        return finished


@dataclass(frozen=True)
class SubscriptionStatus:
    subscription: Subscription
    accepted: ListAcceptance | None
    images: tuple[SyncedImage, ...]
    recent: tuple[SyncRecord, ...]
    syncing: str | None

    @property
    def last_success(self) -> SyncRecord | None:
        done = (SyncOutcome.SUCCEEDED, SyncOutcome.UNCHANGED)
        return next((r for r in self.recent if r.outcome in done), None)

    @property
    def failing(self) -> tuple[SyncedImage, ...]:
        return tuple(i for i in self.images if i.state is ImageState.FAILED)

    @property
    def behind(self) -> bool:
        """Whether some active image is from an older list version than the one accepted."""
        if self.accepted is None:
            return False
        return any(
            i.state in (ImageState.PENDING, ImageState.FAILED)
            or (i.state is ImageState.ACTIVE and i.list_version != self.accepted.version)
            for i in self.images
        )


def _found(uow: SyncUnitOfWork, name: str) -> Subscription:
    found = uow.sync.subscription(name)
    if found is None:
        raise NotFound(f"no subscription {name!r}", hint="slipway subscription list")
    return found


def _check_trust(new: NewSubscription) -> None:
    """A list is trusted through its signer and names its VO; an OCI
    repository signs nothing (its digests are checked) and is of one VO."""
    if is_oci_source(new.source):
        if new.endorser_dn or new.endorser_ca:
            raise InputError(
                "an OCI repository carries no signature to check an endorser against: "
                "its manifests and files are checked against their digests",
                field="endorser_dn",
                hint="leave out --endorser-dn and --endorser-ca",
            )
        if not new.vo:
            raise InputError(
                "an OCI repository does not say which VO its images are of",
                field="vo",
                hint="--vo NAME: definitions then name its images appliance: NAME/REPOSITORY",
            )
        problem = vo_name_problem(new.vo)
        if problem:
            raise InputError(problem, field="vo")
        return
    if not new.endorser_dn:
        raise InputError(
            "a list is trusted through its endorser: give the signer's DN",
            field="endorser_dn",
            hint="--endorser-dn '/DC=…/CN=…' (the list's hv:dn)",
        )
    if new.vo:
        raise InputError(
            "a list names its own VO (ad:vo); --vo is for OCI repositories", field="vo"
        )
