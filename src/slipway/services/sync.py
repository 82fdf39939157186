"""Provider sync (DESIGN.md §10): subscriptions, and the sync that keeps a
cloud's images equal to a verified image list.

One sync of a subscription, under its lease (one worker at a time):

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

import re
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from slipway.connectors.base import Connector, require, supports
from slipway.domain.endorsers import DistinguishedName
from slipway.domain.imagelists import ImageList, ListedImage, PreviousAcceptance
from slipway.domain.machines import Capability, CloudImage, ImageSource
from slipway.domain.sync import (
    ESSENTIAL_PROPERTIES,
    MIN_INTERVAL,
    SYNC_KEY,
    ImageState,
    ListAcceptance,
    PlannedUpload,
    Subscription,
    SyncedImage,
    SyncOutcome,
    SyncRecord,
    SyncStep,
    appliance_key,
    image_properties,
    plan_sync,
    subscription_name_problem,
)
from slipway.errors import (
    Conflict,
    ImageListRejected,
    InputError,
    NotFound,
    PermissionDenied,
    SlipwayError,
    Unsupported,
)
from slipway.services.identity import access_of
from slipway.services.ports import SyncUnitOfWork

__all__ = [
    "AcceptedList",
    "CachedImage",
    "FetchedList",
    "ImageFiles",
    "ListReader",
    "NewSubscription",
    "Progress",
    "SyncService",
]

LEASE = timedelta(minutes=15)
"""How long a sync holds its subscription without a sign of life; renewed as it goes."""
_RENEW_S = 60.0
HISTORY_LIMIT = 200


@dataclass(frozen=True)
class FetchedList:
    """The list's bytes, or ``None`` when the server said ``304 Not Modified``."""

    message: bytes | None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class AcceptedList:
    """A list that passed verification, its expired images apart."""

    image_list: ImageList
    dropped: tuple[ListedImage, ...]
    digest: str


class ListReader(Protocol):
    def fetch(self, source: str, etag: str | None, last_modified: str | None) -> FetchedList:
        """The list at ``source``, conditionally; ``InputError`` when it cannot be read."""
        ...

    def verify(
        self,
        message: bytes,
        subscription: Subscription,
        previous: PreviousAcceptance | None,
        now: datetime,
    ) -> AcceptedList:
        """Check signature, chain, endorser and succession; ``ImageListRejected`` otherwise."""
        ...


@dataclass(frozen=True)
class CachedImage:
    """A downloaded file whose size and SHA-512 are the list's; ``fetched``
    is how many bytes this call downloaded (0 when it was cached)."""

    path: Path
    md5: str | None  # when asked for
    fetched: int


Progress = Callable[[str, str, int, int], None]
"""(step, image title, bytes done, bytes in all) as a transfer moves."""


class ImageFiles(Protocol):
    def fetch(
        self, image: ListedImage, progress: Callable[[int], None], *, md5: bool = False
    ) -> CachedImage:
        """Download ``image.uri`` into the cache (resuming what is there),
        hashing as it streams (and its MD5 too with ``md5``); refuse a size or
        SHA-512 that is not the list's."""
        ...

    def qcow2(self, cached: CachedImage, image: ListedImage) -> Path:
        """The image as a qcow2 file: the download itself, or a conversion of it."""
        ...

    def forget(self, image: ListedImage) -> None:
        """Drop the cached files of ``image`` (once it is on the cloud)."""
        ...


@dataclass(frozen=True)
class NewSubscription:
    name: str
    cloud: str
    source: str
    endorser_dn: str
    endorser_ca: str | None = None
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
        self._reader = reader
        self._files = files
        self._worker = worker
        self._default_ca_dir = default_ca_dir
        self._now = now

    # -- rights ------------------------------------------------------------------------

    def _require_admin(self, uow: SyncUnitOfWork) -> None:
        if not access_of(uow.identity, self.user).admin:
            raise PermissionDenied(
                "only an administrator (the provider's operator) manages subscriptions and syncs",
                hint="ask an administrator of this Slipway",
            )

    # -- subscriptions -----------------------------------------------------------------

    def add(self, new: NewSubscription) -> Subscription:
        problem = subscription_name_problem(new.name)
        if problem:
            raise InputError(problem, field="name")
        _check_source(new.source)
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
            if new.projects and not supports(connector, Capability.IMAGE_SHARING):
                raise Unsupported(
                    f"VO projects: {connector.unsupported[Capability.IMAGE_SHARING]}",
                    cloud=new.cloud,
                )
            subscription = Subscription(
                name=new.name,
                cloud=new.cloud,
                source=new.source,
                endorser_dn=new.endorser_dn,
                endorser_ca=new.endorser_ca,
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
        run = _Sync(self, subscription, record, progress)
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


def _check_source(source: str) -> None:
    lowered = source.lower()
    if lowered.startswith(("http://", "https://")):
        return
    raise InputError(
        f"source {source!r} is not an http:// or https:// URL",
        field="source",
        hint="the URL of a VO's image list, e.g. https://…/vo/VO/image.list",
    )


def native_name(image: ListedImage, key: str) -> str:
    """A name every image service takes: the appliance, and the mark's start."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", appliance_key(image).lower()).strip("-.")[:40]
    return f"{slug or 'image'}-{key[:8]}"


class _Sync:
    """One sync of one subscription: the steps, in order, and their record."""

    def __init__(
        self,
        service: SyncService,
        subscription: Subscription,
        record: SyncRecord,
        progress: Progress | None,
    ) -> None:
        self.service = service
        self.subscription = subscription
        self.record = record
        self.progress = progress
        self.steps: list[SyncStep] = []
        self.outcome = SyncOutcome.SUCCEEDED
        self.list: ImageList | None = None
        self._renewed = time.monotonic()

    # -- bookkeeping ---------------------------------------------------------------

    def _uow(self) -> SyncUnitOfWork:
        return self.service._uow()

    def _now(self) -> datetime:
        return self.service._now()

    def fail(self, step: str, detail: str) -> None:
        self.steps.append(SyncStep(step, "failed", detail=detail))
        self.outcome = SyncOutcome.FAILED

    def finish(self) -> SyncRecord:
        outcome = self.outcome
        if outcome is SyncOutcome.SUCCEEDED and any(s.outcome == "failed" for s in self.steps):
            outcome = SyncOutcome.PARTIAL
        return replace(
            self.record,
            outcome=outcome,
            finished_at=self._now(),
            steps=tuple(self.steps),
            list_identifier=self.list.identifier if self.list else None,
            list_version=self.list.version if self.list else None,
        )

    def _keep_alive(self) -> None:
        """Renew the lease now and then, so a long download keeps it."""
        if time.monotonic() - self._renewed < _RENEW_S:
            return
        now = self._now()
        with self._uow() as uow:
            if not uow.sync.claim(self.subscription.name, self.service._worker, now, now + LEASE):
                raise Conflict(f"{self.subscription.name}: another worker took over the sync")
            uow.commit()
        self._renewed = time.monotonic()

    def _save(self, image: SyncedImage) -> SyncedImage:
        with self._uow() as uow:
            uow.sync.save_image(image)
            uow.commit()
        return image

    @contextmanager
    def _step(self, step: str, image: ListedImage | None = None) -> Iterator[dict[str, int]]:
        """Time a step and record it; a ``SlipwayError`` inside is recorded
        as the step's failure and raised again."""
        start = time.monotonic()
        moved = {"bytes": 0}
        identifier = image.identifier if image else None
        title = image.title if image else None
        try:
            yield moved
        except SlipwayError as exc:
            detail = str(exc)
            self.steps.append(
                SyncStep(step, "failed", time.monotonic() - start, identifier, title,
                         moved["bytes"], detail)
            )  # fmt: skip
            raise
        self.steps.append(
            SyncStep(step, "ok", time.monotonic() - start, identifier, title, moved["bytes"])
        )

    # -- the sync ------------------------------------------------------------------

    def go(self) -> None:
        accepted = self._read_list()
        if accepted is None:
            return
        subscription = self.subscription
        with self._uow() as uow:
            held = tuple(uow.sync.images(subscription.name))
        wanted = tuple(i for i in accepted.image_list.images if subscription.wants(i))
        plan = plan_sync(subscription, wanted, held, self._now())
        try:
            connector = self.service._connectors(subscription.cloud)
        except SlipwayError as exc:
            self.fail("connect", str(exc))
            return
        for upload in plan.upload:
            self._keep_alive()
            self._upload(connector, accepted.image_list, upload)
        for image in plan.hide:
            self._hide(connector, image, "no longer in the list")
        for image in plan.purge:
            self._purge(connector, image)
        idle = not (plan.upload or plan.hide or plan.purge)
        if idle and self._not_modified and self.outcome is SyncOutcome.SUCCEEDED:
            self.outcome = SyncOutcome.UNCHANGED

    _not_modified = False

    def _read_list(self) -> AcceptedList | None:
        subscription = self.subscription
        reader = self.service._reader
        with self._uow() as uow:
            before = uow.sync.acceptance(subscription.name)
        try:
            with self._step("fetch") as moved:
                fetched = reader.fetch(
                    subscription.source,
                    before.etag if before else None,
                    before.last_modified if before else None,
                )
                moved["bytes"] = len(fetched.message or b"")
        except SlipwayError:
            self.outcome = SyncOutcome.FAILED
            return None
        message = fetched.message
        if message is None:
            if before is None:  # a 304 to a request that was not conditional
                self.fail("fetch", "the server answered 304 Not Modified to a plain GET")
                return None
            self._not_modified = True
            message = before.message
        previous = PreviousAcceptance(before.identifier, before.version) if before else None
        start = time.monotonic()
        try:
            accepted = reader.verify(message, subscription, previous, self._now())
        except ImageListRejected as exc:
            self.steps.append(
                SyncStep("verify", "failed", time.monotonic() - start, detail=str(exc))
            )
            self.record = replace(self.record, problems=tuple(exc.problems))
            self.outcome = SyncOutcome.REJECTED
            return None
        except SlipwayError as exc:
            self.fail("verify", str(exc))
            return None
        image_list = accepted.image_list
        self.list = image_list
        dropped = f"; {len(accepted.dropped)} expired image(s) left out" if accepted.dropped else ""
        self.steps.append(
            SyncStep(
                "verify",
                "ok",
                time.monotonic() - start,
                detail=f"{image_list.identifier} version {image_list.version}, "
                f"{len(image_list.images)} image(s){dropped}",
            )
        )
        with self._uow() as uow:
            uow.sync.accept(
                subscription.name,
                ListAcceptance(
                    identifier=image_list.identifier,
                    version=image_list.version,
                    digest=accepted.digest,
                    message=message,
                    etag=fetched.etag or (before.etag if before else None),
                    last_modified=fetched.last_modified
                    or (before.last_modified if before else None),
                    accepted_at=self._now(),
                ),
            )
            uow.commit()
        return accepted

    def _upload(self, connector: Connector, image_list: ImageList, planned: PlannedUpload) -> None:
        image = planned.image
        now = self._now()
        row = planned.row or SyncedImage(
            key=planned.key,
            subscription=self.subscription.name,
            identifier=image.identifier,
            fields_hash=planned.fields_hash,
            appliance=appliance_key(image),
            vo=image_list.vo,
            version=image.version,
            list_version=image_list.version,
            title=image.title,
            sha512=image.sha512,
            size=image.size,
            state=ImageState.PENDING,
            updated_at=now,
        )
        row = self._save(
            replace(
                row,
                state=ImageState.PENDING,
                attempts=row.attempts + 1,
                list_version=image_list.version,
                vo=image_list.vo,
                updated_at=now,
                hidden_at=None,
            )
        )
        try:
            native = self._put(connector, image_list, planned)
        except SlipwayError as exc:
            self._save(
                replace(row, state=ImageState.FAILED, error=str(exc), updated_at=self._now())
            )
            return
        except Exception as exc:  # a bug: recorded with the image, the others go on
            detail = f"{type(exc).__name__}: {exc}"
            self.steps.append(SyncStep("upload", "failed", image=image.identifier, detail=detail))
            self._save(replace(row, state=ImageState.FAILED, error=detail, updated_at=self._now()))
            return
        done = self._now()
        self._save(
            replace(
                row,
                state=ImageState.ACTIVE,
                native_id=native.id,
                error=None,
                synced_at=done,
                updated_at=done,
            )
        )
        self.service._files.forget(image)
        if planned.replaces is not None:
            self._hide(connector, planned.replaces, f"replaced by {native.id}")

    def _put(
        self, connector: Connector, image_list: ImageList, planned: PlannedUpload
    ) -> CloudImage:
        """The image on the cloud, visible and shared: adopted from an earlier
        try, or downloaded, converted and uploaded now."""
        image = planned.image
        project = self.subscription.project_of(image_list.vo)
        if self.subscription.projects and project is None:
            with self._step("share", image):
                raise Conflict(
                    f"no project is mapped to VO {image_list.vo or '(none)'}: the image "
                    "would not reach the VO's users",
                    hint=f"slipway subscription add … --project {image_list.vo}=PROJECT",
                )
        native = self._adopt(connector, planned)
        if native is None:
            properties = image_properties(image, image_list, self.subscription.name, planned.key)
            name = native_name(image, planned.key)
            uploads = supports(connector, Capability.IMAGE_UPLOAD)
            cached = self._download(image, md5=not uploads)  # a cloud fetching it checks an MD5
            if uploads:
                with self._step("convert", image):
                    path = self.service._files.qcow2(cached, image)
                with self._step("upload", image) as moved:
                    native = _fitting(lambda p: connector.upload_image(path, name, p), properties)
                    moved["bytes"] = path.stat().st_size
            else:
                with self._step("register", image):
                    if (image.format or "qcow2").lower() != "qcow2":
                        raise Unsupported(
                            f"{connector.cloud} fetches images itself and takes qcow2 only; "
                            f"this image is {image.format}",
                            cloud=connector.cloud,
                        )
                    source = ImageSource(image.uri, image.size, image.sha512, cached.md5 or "")
                    native = _fitting(
                        lambda p: connector.register_image(source, name, p), properties
                    )
        if project is not None:
            with self._step("share", image):
                require(connector, Capability.IMAGE_SHARING)
                connector.share_image(native.id, project)
        return native

    def _adopt(self, connector: Connector, planned: PlannedUpload) -> CloudImage | None:
        """What an earlier, interrupted try of this image left on the cloud:
        a finished, visible image is kept; anything else of it is deleted
        (unless a machine uses it). An image atrope uploaded of the same
        bytes is recognised too."""
        image = planned.image
        with self._step("look", image):
            found = connector.find_images({SYNC_KEY: planned.key})
            if not found and planned.row is None:
                found = [
                    f
                    for f in connector.find_images({"appdb_id": image.identifier})
                    if image.sha512 in (f.properties.get("sha512"), f.properties.get("image_hash"))
                ]
            usable = next((f for f in found if f.ready and not f.hidden), None)
            for leftover in found:
                if leftover is not usable and not connector.image_users(leftover.id):
                    connector.delete_image(leftover.id)
        return usable

    def _download(self, image: ListedImage, *, md5: bool) -> CachedImage:
        def moved(done: int) -> None:
            self._keep_alive()
            if self.progress is not None:
                self.progress("download", image.title or image.identifier, done, image.size)

        with self._step("download", image) as step:
            cached = self.service._files.fetch(image, moved, md5=md5)
            step["bytes"] = cached.fetched
        return cached

    def _hide(self, connector: Connector, image: SyncedImage, why: str) -> None:
        listed = _as_listed(image)
        try:
            with self._step("hide", listed):
                if image.native_id:
                    connector.hide_image(image.native_id)
        except SlipwayError:
            return
        now = self._now()
        self._save(replace(image, state=ImageState.HIDDEN, hidden_at=now, updated_at=now,
                           error=None))  # fmt: skip
        self.steps[-1] = replace(self.steps[-1], detail=why)

    def _purge(self, connector: Connector, image: SyncedImage) -> None:
        """Delete a hidden image whose grace period is over, unless a machine uses it."""
        listed = _as_listed(image)
        try:
            with self._step("delete", listed):
                users = connector.image_users(image.native_id) if image.native_id else []
                if not users and image.native_id:
                    connector.delete_image(image.native_id)
        except SlipwayError:
            return
        if users:
            shown = ", ".join(users[:5]) + (" …" if len(users) > 5 else "")
            self.steps[-1] = replace(
                self.steps[-1], outcome="skipped", detail=f"kept: used by {shown}"
            )
            return
        self._save(replace(image, state=ImageState.DELETED, updated_at=self._now()))


def _fitting(put: Callable[[dict[str, str]], CloudImage], properties: dict[str, str]) -> CloudImage:
    """``put`` with every property, or — when the cloud cannot hold them all
    (EC2 keeps 256 characters a tag, Exoscale 242 in all) and says so before
    it stores anything — with fewer, down to the ones a sync cannot do
    without: its mark and the list image's identifier."""
    tiers = [
        properties,
        {k: v for k, v in properties.items() if k != "APPLIANCE_ATTRIBUTES"},
        {k: properties[k] for k in ESSENTIAL_PROPERTIES if k in properties},
    ]
    for tier in tiers[:-1]:
        try:
            return put(tier)
        except InputError:
            continue
    return put(tiers[-1])


def _as_listed(image: SyncedImage) -> ListedImage:
    """Enough of a listed image to name a step after a held one."""
    return ListedImage(image.identifier, "", image.size, image.sha512, title=image.title)
