"""Runs on SQLAlchemy: optimistic saves and worker leases done in single
UPDATE statements, so they hold across processes and machines."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session

from slipway.adapters.store._run_target_json import target_from_json, target_to_json
from slipway.adapters.store._times import utc
from slipway.adapters.store.tables import RunEventRow, RunRow
from slipway.domain.runs import TRANSITIONAL, KeepRunning, Run, RunEvent, RunState
from slipway.errors import Conflict

__all__ = ["SqlRunStore"]


def _to_run(row: Any) -> Run:
    """A run from a ``RunRow`` or a row of its table's columns."""
    return Run(
        id=row.id,
        owner=row.owner,
        module=row.module,
        cloud=row.cloud,
        created_at=utc(row.created_at),
        deadline=utc(row.deadline),
        target=target_from_json(row.id, row.target),
        keep_running=KeepRunning(row.keep_running),
        state=RunState(row.state),
        step=row.step,
        message=row.message,
        machine_id=row.machine_id,
        parameters=dict(row.parameters),
        timestamps=dict(row.timestamps),
        version=row.version,
    )


def _changing(run: Run) -> dict[str, object]:
    """The columns a step can change; the rest is written once, by ``add``."""
    return {
        "state": run.state.value,
        "step": run.step,
        "message": run.message,
        "machine_id": run.machine_id,
        "parameters": run.parameters,
        "timestamps": run.timestamps,
    }


def _columns(run: Run) -> dict[str, object]:
    return {
        "owner": run.owner,
        "module": run.module,
        "cloud": run.cloud,
        "keep_running": run.keep_running.value,
        "target": target_to_json(run.target),
        "created_at": run.created_at,
        "deadline": run.deadline,
        **_changing(run),
    }


# The statements a run's every step executes, built once: Core statements on
# the session's connection, with the SET columns taken from the parameters'
# keys (the ``b_`` parameters are the WHERE clause's). Building, caching and
# ORM bookkeeping were most of a step's database time.
_RUNS = cast(Table, RunRow.__table__)
_ADD = insert(_RUNS)
_GET = select(_RUNS).where(_RUNS.c.id == bindparam("b_id"))
_SAVE = update(_RUNS).where(
    _RUNS.c.id == bindparam("b_id"), _RUNS.c.version == bindparam("b_version")
)
_CLAIM = update(_RUNS).where(
    _RUNS.c.id == bindparam("b_id"),
    or_(
        _RUNS.c.lease_until.is_(None),
        _RUNS.c.lease_until < bindparam("b_now"),
        _RUNS.c.lease_owner == bindparam("b_worker"),
    ),
)
_RELEASE = update(_RUNS).where(
    _RUNS.c.id == bindparam("b_id"), _RUNS.c.lease_owner == bindparam("b_worker")
)
_ADD_EVENT = insert(cast(Table, RunEventRow.__table__))


class SqlRunStore:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _execute(self, statement: Any, parameters: dict[str, Any]) -> Any:
        return self.session.connection().execute(statement, parameters)

    def add(self, run: Run) -> None:
        self._execute(_ADD, {"id": run.id, "version": run.version, **_columns(run)})

    def get(self, run_id: str) -> Run | None:
        row = self._execute(_GET, {"b_id": run_id}).one_or_none()
        return _to_run(row) if row else None

    def save(self, run: Run) -> None:
        changes = {"version": run.version + 1, **_changing(run)}
        result = self._execute(_SAVE, {"b_id": run.id, "b_version": run.version, **changes})
        if result.rowcount != 1:
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
        self._execute(
            _ADD_EVENT,
            {
                "run_id": event.run_id,
                "at": event.at,
                "state": event.state.value,
                "message": event.message,
            },
        )

    def events(self, run_id: str) -> Sequence[RunEvent]:
        rows = self.session.scalars(
            select(RunEventRow).where(RunEventRow.run_id == run_id).order_by(RunEventRow.id)
        )
        return [RunEvent(r.run_id, utc(r.at), RunState(r.state), r.message) for r in rows]

    def claim(self, run_id: str, worker: str, now: datetime, until: datetime) -> bool:
        result = self._execute(
            _CLAIM,
            {
                "b_id": run_id,
                "b_now": now,
                "b_worker": worker,
                "lease_owner": worker,
                "lease_until": until,
            },
        )
        return result.rowcount == 1  # type: ignore[no-any-return]

    def release(self, run_id: str, worker: str, next_step_at: datetime | None) -> None:
        self._execute(
            _RELEASE,
            {
                "b_id": run_id,
                "b_worker": worker,
                "lease_owner": None,
                "lease_until": None,
                "next_step_at": next_step_at,
            },
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
