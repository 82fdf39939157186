"""Runs on SQLAlchemy: optimistic saves and worker leases done in single
UPDATE statements, so they hold across processes and machines."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from slipway.adapters.store.tables import RunEventRow, RunRow
from slipway.domain.runs import TRANSITIONAL, KeepRunning, Run, RunEvent, RunState
from slipway.errors import Conflict

__all__ = ["SqlRunStore"]


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _to_run(row: RunRow) -> Run:
    return Run(
        id=row.id,
        owner=row.owner,
        module=row.module,
        cloud=row.cloud,
        created_at=_aware(row.created_at),
        deadline=_aware(row.deadline),
        target=row.target,
        keep_running=KeepRunning(row.keep_running),
        state=RunState(row.state),
        step=row.step,
        message=row.message,
        machine_id=row.machine_id,
        parameters=dict(row.parameters),
        timestamps=dict(row.timestamps),
        version=row.version,
    )


def _columns(run: Run) -> dict[str, object]:
    return {
        "owner": run.owner,
        "module": run.module,
        "cloud": run.cloud,
        "state": run.state.value,
        "step": run.step,
        "message": run.message,
        "keep_running": run.keep_running.value,
        "machine_id": run.machine_id,
        "target": run.target,
        "parameters": run.parameters,
        "timestamps": run.timestamps,
        "created_at": run.created_at,
        "deadline": run.deadline,
    }


class SqlRunStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, run: Run) -> None:
        self.session.add(RunRow(id=run.id, version=run.version, **_columns(run)))
        self.session.flush()

    def get(self, run_id: str) -> Run | None:
        row = self.session.get(RunRow, run_id, populate_existing=True)
        return _to_run(row) if row else None

    def save(self, run: Run) -> None:
        result = self.session.execute(
            update(RunRow)
            .where(RunRow.id == run.id, RunRow.version == run.version)
            .values(version=run.version + 1, **_columns(run))
            .execution_options(synchronize_session=False)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Conflict(f"run {run.id} was changed by someone else meanwhile")
        run.version += 1

    def list(
        self,
        *,
        owner: str | None = None,
        states: Collection[RunState] | None = None,
        cloud: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[Run]:
        page = select(RunRow.id)
        if owner is not None:
            page = page.where(RunRow.owner == owner)
        if states is not None:
            page = page.where(RunRow.state.in_([s.value for s in states]))
        if cloud is not None:
            page = page.where(RunRow.cloud == cloud)
        # Both keys descending, so each filter's index (tables.py) is read
        # backwards in order and nothing is sorted. The page's ids come off
        # that index alone, however deep the offset; only those rows are then
        # read whole, JSON and all.
        newest = (RunRow.created_at.desc(), RunRow.id.desc())
        page = page.order_by(*newest).limit(limit).offset(offset)
        rows = self.session.scalars(select(RunRow).where(RunRow.id.in_(page)).order_by(*newest))
        return [_to_run(row) for row in rows]

    def add_event(self, event: RunEvent) -> None:
        self.session.add(
            RunEventRow(
                run_id=event.run_id, at=event.at, state=event.state.value, message=event.message
            )
        )
        self.session.flush()

    def events(self, run_id: str) -> Sequence[RunEvent]:
        rows = self.session.scalars(
            select(RunEventRow).where(RunEventRow.run_id == run_id).order_by(RunEventRow.id)
        )
        return [RunEvent(r.run_id, _aware(r.at), RunState(r.state), r.message) for r in rows]

    def claim(self, run_id: str, worker: str, now: datetime, until: datetime) -> bool:
        result = self.session.execute(
            update(RunRow)
            .where(
                RunRow.id == run_id,
                or_(
                    RunRow.lease_until.is_(None),
                    RunRow.lease_until < now,
                    RunRow.lease_owner == worker,
                ),
            )
            .values(lease_owner=worker, lease_until=until)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]

    def release(self, run_id: str, worker: str, next_step_at: datetime | None) -> None:
        self.session.execute(
            update(RunRow)
            .where(RunRow.id == run_id, RunRow.lease_owner == worker)
            .values(lease_owner=None, lease_until=None, next_step_at=next_step_at)
            .execution_options(synchronize_session=False)
        )

    def clouds(self) -> Sequence[str]:
        return list(self.session.scalars(select(RunRow.cloud).distinct().order_by(RunRow.cloud)))

    def due(self, now: datetime) -> Sequence[str]:
        query = (
            select(RunRow.id)
            .where(
                RunRow.state.in_([s.value for s in TRANSITIONAL]),
                or_(RunRow.next_step_at.is_(None), RunRow.next_step_at < now),
                or_(RunRow.lease_until.is_(None), RunRow.lease_until < now),
            )
            .order_by(RunRow.created_at)
        )
        return list(self.session.scalars(query))
