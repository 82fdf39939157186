"""Provider sync in SQL: subscriptions, the native images each keeps, and
the history of syncs (tables in ``tables.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from slipway.adapters.store._times import utc, utc_or_none
from slipway.adapters.store.tables import SubscriptionRow, SyncImageRow, SyncRunRow
from slipway.domain.sync import (
    ImageState,
    ListAcceptance,
    Subscription,
    SyncedImage,
    SyncOutcome,
    SyncRecord,
    SyncStep,
)
from slipway.errors import Conflict, NotFound

__all__ = ["SqlSyncStore"]


def _subscription(row: SubscriptionRow) -> Subscription:
    return Subscription(
        name=row.name,
        cloud=row.cloud,
        source=row.source,
        endorser_dn=row.endorser_dn,
        endorser_ca=row.endorser_ca,
        vo=row.vo,
        ca_dir=row.ca_dir,
        projects=tuple(sorted((str(k), str(v)) for k, v in row.projects.items())),
        interval=timedelta(seconds=row.interval_s),
        grace=timedelta(seconds=row.grace_s),
        only=row.only,
        owner=row.owner,
        created_at=utc(row.created_at),
        next_at=utc_or_none(row.next_at),
    )


def _image(row: SyncImageRow, subscription: str) -> SyncedImage:
    return SyncedImage(
        key=row.key,
        subscription=subscription,
        identifier=row.identifier,
        fields_hash=row.fields_hash,
        appliance=row.appliance,
        vo=row.vo,
        version=row.version,
        list_version=row.list_version,
        title=row.title,
        sha512=row.sha512,
        size=row.size,
        state=ImageState(row.state),
        native_id=row.native_id,
        error=row.error,
        attempts=row.attempts,
        updated_at=utc(row.updated_at),
        synced_at=utc_or_none(row.synced_at),
        hidden_at=utc_or_none(row.hidden_at),
    )


def _record(row: SyncRunRow, subscription: str) -> SyncRecord:
    return SyncRecord(
        id=row.id,
        subscription=subscription,
        started_at=utc(row.started_at),
        finished_at=utc_or_none(row.finished_at),
        outcome=SyncOutcome(row.outcome),
        trigger=row.trigger,
        worker=row.worker,
        list_identifier=row.list_identifier,
        list_version=row.list_version,
        problems=tuple((str(r), str(d)) for r, d in row.problems),
        steps=tuple(SyncStep(**s) for s in row.steps),
    )


class SqlSyncStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    # -- subscriptions -------------------------------------------------------------

    def _row(self, name: str) -> SubscriptionRow:
        row = self.session.scalar(select(SubscriptionRow).where(SubscriptionRow.name == name))
        if row is None:
            raise NotFound(f"no subscription {name!r}", hint="slipway subscription list")
        return row

    def subscription(self, name: str) -> Subscription | None:
        row = self.session.scalar(select(SubscriptionRow).where(SubscriptionRow.name == name))
        return None if row is None else _subscription(row)

    def subscriptions(self) -> Sequence[Subscription]:
        rows = self.session.scalars(select(SubscriptionRow).order_by(SubscriptionRow.name))
        return [_subscription(r) for r in rows]

    def add_subscription(self, s: Subscription) -> None:
        self.session.add(
            SubscriptionRow(
                name=s.name,
                cloud=s.cloud,
                source=s.source,
                endorser_dn=s.endorser_dn,
                endorser_ca=s.endorser_ca,
                vo=s.vo,
                ca_dir=s.ca_dir,
                projects=dict(s.projects),
                interval_s=int(s.interval.total_seconds()),
                grace_s=int(s.grace.total_seconds()),
                only=s.only,
                owner=s.owner,
                created_at=s.created_at,
                next_at=s.next_at,
            )
        )
        try:
            self.session.flush()
        except IntegrityError:
            raise Conflict(f"a subscription named {s.name!r} exists") from None

    def remove_subscription(self, name: str) -> None:
        self.session.delete(self._row(name))
        self.session.flush()

    def claim(self, name: str, worker: str, now: datetime, until: datetime) -> bool:
        """Take the subscription's lease unless another worker holds it."""
        result = self.session.execute(
            update(SubscriptionRow)
            .where(
                SubscriptionRow.name == name,
                or_(
                    SubscriptionRow.lease_until.is_(None),
                    SubscriptionRow.lease_until < now,
                    SubscriptionRow.lease_owner == worker,
                ),
            )
            .values(lease_owner=worker, lease_until=until)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def release(self, name: str, worker: str, next_at: datetime | None) -> None:
        self.session.execute(
            update(SubscriptionRow)
            .where(SubscriptionRow.name == name, SubscriptionRow.lease_owner == worker)
            .values(lease_owner=None, lease_until=None, next_at=next_at)
        )

    def holder(self, name: str, now: datetime) -> str | None:
        """The worker holding the subscription's lease now, if any."""
        row = self._row(name)
        if row.lease_until is None or utc(row.lease_until) < now:
            return None
        return row.lease_owner

    def due(self, now: datetime) -> Sequence[str]:
        """Subscriptions whose next sync is due and that no worker holds."""
        rows = self.session.scalars(
            select(SubscriptionRow.name).where(
                or_(SubscriptionRow.next_at.is_(None), SubscriptionRow.next_at <= now),
                or_(SubscriptionRow.lease_until.is_(None), SubscriptionRow.lease_until < now),
            )
        )
        return list(rows)

    def schedule(self, name: str, when: datetime) -> None:
        self._row(name).next_at = when
        self.session.flush()

    def acceptance(self, name: str) -> ListAcceptance | None:
        row = self._row(name)
        if row.list_identifier is None or row.list_message is None:
            return None
        return ListAcceptance(
            identifier=row.list_identifier,
            version=row.list_version or "",
            digest=row.list_digest or "",
            message=row.list_message,
            etag=row.etag,
            last_modified=row.last_modified,
            accepted_at=utc_or_none(row.accepted_at),
        )

    def accept(self, name: str, accepted: ListAcceptance) -> None:
        row = self._row(name)
        row.list_identifier = accepted.identifier
        row.list_version = accepted.version
        row.list_digest = accepted.digest
        row.list_message = accepted.message
        row.etag = accepted.etag
        row.last_modified = accepted.last_modified
        row.accepted_at = accepted.accepted_at
        self.session.flush()

    # -- images ----------------------------------------------------------------------

    def images(self, name: str) -> Sequence[SyncedImage]:
        row = self._row(name)
        rows = self.session.scalars(
            select(SyncImageRow)
            .where(SyncImageRow.subscription_id == row.id)
            .order_by(SyncImageRow.title, SyncImageRow.id)
        )
        return [_image(r, name) for r in rows]

    def save_image(self, image: SyncedImage) -> None:
        """Insert the image, or update the one with its key."""
        row = self.session.scalar(select(SyncImageRow).where(SyncImageRow.key == image.key))
        if row is None:
            row = SyncImageRow(key=image.key, subscription_id=self._row(image.subscription).id)
            self.session.add(row)
        for name in (
            "identifier", "fields_hash", "appliance", "vo", "version", "list_version", "title",
            "sha512", "size", "native_id", "error", "attempts", "updated_at", "synced_at",
            "hidden_at",
        ):  # fmt: skip
            setattr(row, name, getattr(image, name))
        row.state = image.state.value
        self.session.flush()

    def synced(self, vo: str, appliance: str) -> Sequence[tuple[str, SyncedImage]]:
        """Every active image of ``vo``'s ``appliance``, with its subscription's cloud."""
        rows = self.session.execute(
            select(SyncImageRow, SubscriptionRow.name, SubscriptionRow.cloud)
            .join(SubscriptionRow, SubscriptionRow.id == SyncImageRow.subscription_id)
            .where(
                and_(
                    SyncImageRow.vo == vo,
                    SyncImageRow.appliance == appliance,
                    SyncImageRow.state.in_((ImageState.ACTIVE.value, ImageState.HIDDEN.value)),
                )
            )
        )
        return [(cloud, _image(row, name)) for row, name, cloud in rows]

    # -- history ----------------------------------------------------------------------

    def add_run(self, record: SyncRecord) -> int:
        row = SyncRunRow(subscription_id=self._row(record.subscription).id)
        self._fill(row, record)
        self.session.add(row)
        self.session.flush()
        return row.id

    def save_run(self, record: SyncRecord) -> None:
        row = self.session.get(SyncRunRow, record.id)
        if row is None:
            raise NotFound(f"no sync {record.id}")
        self._fill(row, record)
        self.session.flush()

    @staticmethod
    def _fill(row: SyncRunRow, record: SyncRecord) -> None:
        row.started_at = record.started_at
        row.finished_at = record.finished_at
        row.outcome = record.outcome.value
        row.trigger = record.trigger
        row.worker = record.worker
        row.list_identifier = record.list_identifier
        row.list_version = record.list_version
        row.problems = [list(p) for p in record.problems]
        row.steps = [s.to_dict() for s in record.steps]

    def runs(self, name: str | None, limit: int) -> Sequence[SyncRecord]:
        query = (
            select(SyncRunRow, SubscriptionRow.name)
            .join(SubscriptionRow, SubscriptionRow.id == SyncRunRow.subscription_id)
            .order_by(SyncRunRow.id.desc())
            .limit(limit)
        )
        if name is not None:
            query = query.where(SubscriptionRow.name == name)
        return [_record(row, sub) for row, sub in self.session.execute(query)]

    def run(self, run_id: int) -> SyncRecord | None:
        found = self.session.execute(
            select(SyncRunRow, SubscriptionRow.name)
            .join(SubscriptionRow, SubscriptionRow.id == SyncRunRow.subscription_id)
            .where(SyncRunRow.id == run_id)
        ).first()
        return None if found is None else _record(found[0], found[1])
