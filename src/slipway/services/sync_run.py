"""One sync of one subscription, step by step (``docs/sync.md``), and the
ports it reads lists and image files through. :class:`SyncService`
(``services/sync.py``) takes the lease and records the outcome; this module
is what happens in between."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from slipway.connectors.base import Connector, require, supports
from slipway.domain.imagelists import ImageList, ListedImage, PreviousAcceptance
from slipway.domain.machines import Capability, CloudImage, ImageSource, ImageStream
from slipway.domain.sync import (
    ESSENTIAL_PROPERTIES,
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
)
from slipway.errors import (
    Conflict,
    ImageListRejected,
    PropertiesDoNotFit,
    SlipwayError,
    Unsupported,
)
from slipway.services.ports import SyncUnitOfWork

__all__ = [
    "LEASE",
    "AcceptedList",
    "CachedImage",
    "FetchedList",
    "ImageFiles",
    "ListReader",
    "Progress",
    "SyncParts",
    "SyncRun",
    "native_name",
]

LEASE = timedelta(minutes=15)
"""How long a sync holds its subscription without a sign of life; renewed as it goes."""
_RENEW_S = 60.0


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
    notes: tuple[str, ...] = ()  # what the history should say besides, e.g. tags skipped


class ListReader(Protocol):
    def check_source(self, source: str) -> None:
        """``InputError`` naming the field when ``source`` is not one this reader reads."""
        ...

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
    """A downloaded file whose size and SHA-512 (or OCI digest) are the
    list's; ``fetched`` is how many bytes this call downloaded (0 when it
    was cached)."""

    path: Path
    md5: str | None  # when asked for
    fetched: int
    sha512: str


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

    def stream(
        self, image: ListedImage, progress: Callable[[int], None]
    ) -> tuple[ImageStream, Future[CachedImage]]:
        """Download as ``fetch`` does, on a thread of its own, and give a
        stream of the file for an upload meanwhile: it ends only once the
        download matched and the file proved a qcow2 reading no other file."""
        ...

    def qcow2(self, cached: CachedImage, image: ListedImage) -> Path:
        """The image as a qcow2 file: the download itself, or a conversion of it."""
        ...

    def forget(self, image: ListedImage) -> None:
        """Drop the cached files of ``image`` (once it is on the cloud)."""
        ...


def native_name(image: ListedImage, key: str) -> str:
    """A name every image service takes: the appliance, and the mark's start."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", appliance_key(image).lower()).strip("-.")[:40]
    return f"{slug or 'image'}-{key[:8]}"


@dataclass(frozen=True)
class SyncParts:
    """What a sync works with: the store, the clouds, the list reader, the
    image cache, who this worker is, and the clock."""

    uow: Callable[[], SyncUnitOfWork]
    connectors: Callable[[str], Connector]
    reader: ListReader
    files: ImageFiles
    worker: str
    now: Callable[[], datetime]


class SyncRun:
    """One sync of one subscription (holding its lease): the steps, in
    order, and their record."""

    def __init__(
        self,
        parts: SyncParts,
        subscription: Subscription,
        record: SyncRecord,
        progress: Progress | None,
    ) -> None:
        self.parts = parts
        self.subscription = subscription
        self.record = record
        self.progress = progress
        self.steps: list[SyncStep] = []
        self.outcome = SyncOutcome.SUCCEEDED
        self.list: ImageList | None = None
        self._renewed = time.monotonic()

    # -- bookkeeping ---------------------------------------------------------------

    def _uow(self) -> SyncUnitOfWork:
        return self.parts.uow()

    def _now(self) -> datetime:
        return self.parts.now()

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
            if not uow.sync.claim(self.subscription.name, self.parts.worker, now, now + LEASE):
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
            connector = self.parts.connectors(subscription.cloud)
        except SlipwayError as exc:
            self.fail("connect", str(exc))
            return
        self._confirm(plan.keep, accepted.image_list)
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
        reader = self.parts.reader
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
        dropped += "".join(f"; {note}" for note in accepted.notes)
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

    def _confirm(self, kept: tuple[SyncedImage, ...], image_list: ImageList) -> None:
        """Images the list still holds unchanged are now of its version (not behind it)."""
        moved = [i for i in kept if i.list_version != image_list.version]
        if not moved:
            return
        with self._uow() as uow:
            for image in moved:
                uow.sync.save_image(replace(image, list_version=image_list.version))
            uow.commit()

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
            native, sha512 = self._put(connector, image_list, planned)
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
                sha512=sha512,
                error=None,
                synced_at=done,
                updated_at=done,
            )
        )
        self.parts.files.forget(image)
        if planned.replaces is not None:
            self._hide(connector, planned.replaces, f"replaced by {native.id}")

    def _put(
        self, connector: Connector, image_list: ImageList, planned: PlannedUpload
    ) -> tuple[CloudImage, str]:
        """The image on the cloud, visible and shared (adopted from an earlier
        try, or downloaded, converted and uploaded now), and its SHA-512 (an
        OCI repository's images have it only once downloaded)."""
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
        if native is not None:
            sha512 = image.sha512 or native.properties.get("sha512", "")
        elif _streams(connector, image):
            properties = image_properties(image, image_list, self.subscription.name, planned.key)
            native = self._stream(connector, image, native_name(image, planned.key), properties)
            sha512 = image.sha512
        else:
            uploads = supports(connector, Capability.IMAGE_UPLOAD)
            cached = self._download(image, md5=not uploads)  # a cloud fetching it checks an MD5
            image = replace(image, sha512=cached.sha512)
            sha512 = cached.sha512
            properties = image_properties(image, image_list, self.subscription.name, planned.key)
            name = native_name(image, planned.key)
            if uploads:
                with self._step("convert", image):
                    path = self.parts.files.qcow2(cached, image)
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
        return native, sha512

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

    def _moved(self, image: ListedImage) -> Callable[[int], None]:
        def moved(done: int) -> None:
            self._keep_alive()
            if self.progress is not None:
                self.progress("download", image.title or image.identifier, done, image.size)

        return moved

    def _download(self, image: ListedImage, *, md5: bool) -> CachedImage:
        with self._step("download", image) as step:
            cached = self.parts.files.fetch(image, self._moved(image), md5=md5)
            step["bytes"] = cached.fetched
        return cached

    def _stream(
        self, connector: Connector, image: ListedImage, name: str, properties: dict[str, str]
    ) -> CloudImage:
        """Download and upload at once: the upload reads the file as it
        arrives, and can end only once the download has matched the list."""
        start = time.monotonic()
        stream, download = self.parts.files.stream(image, self._moved(image))
        try:
            native = _fitting(lambda p: connector.stream_image(stream, name, p), properties)
        except SlipwayError as exc:
            upload_error: SlipwayError | None = exc
        else:
            upload_error = None
        uploaded = time.monotonic() - start
        try:
            cached = download.result()  # even after a failed upload: the next sync uses it
        except SlipwayError as exc:
            self.steps.append(SyncStep("download", "failed", time.monotonic() - start,
                                       image.identifier, image.title, 0, str(exc)))  # fmt: skip
            raise
        self.steps.append(SyncStep("download", "ok", time.monotonic() - start,
                                   image.identifier, image.title, cached.fetched))  # fmt: skip
        if upload_error is not None:
            self.steps.append(SyncStep("upload", "failed", uploaded, image.identifier,
                                       image.title, 0, str(upload_error)))  # fmt: skip
            raise upload_error
        self.steps.append(SyncStep("upload", "ok", uploaded, image.identifier, image.title,
                                   image.size, "while downloading"))  # fmt: skip
        return native

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
        except PropertiesDoNotFit:
            continue
    return put(tiers[-1])


def _streams(connector: Connector, image: ListedImage) -> bool:
    """Whether the image goes up while it downloads: a cloud that takes a
    stream, a qcow2 as the list says (nothing to convert), a SHA-512 known
    before the download (a list's image, not an OCI repository's)."""
    return (
        supports(connector, Capability.IMAGE_UPLOAD)
        and supports(connector, Capability.IMAGE_STREAMING)
        and (image.format or "qcow2").lower() == "qcow2"
        and bool(image.sha512)
    )


def _as_listed(image: SyncedImage) -> ListedImage:
    """Enough of a listed image to name a step after a held one."""
    return ListedImage(image.identifier, "", image.size, image.sha512, title=image.title)
