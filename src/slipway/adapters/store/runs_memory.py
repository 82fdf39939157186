"""Runs in memory: the same contract as :mod:`.runs_sql`, for tests.

A run's target is kept as the frozen value it is: the SQL store's JSON gives
back an equal one, which the run store tests check on every store."""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from slipway.domain.runs import TRANSITIONAL, Run, RunEvent, RunState
from slipway.errors import Conflict

__all__ = ["MemoryRunStore"]


@dataclass
class _Lease:
    owner: str | None = None
    until: datetime | None = None
    next_step_at: datetime | None = None


class MemoryRunStore:
    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}
        self.leases: dict[str, _Lease] = {}
        self.event_log: list[RunEvent] = []

    def add(self, run: Run) -> None:
        if run.id in self.runs:
            raise Conflict(f"run {run.id} already exists")
        self.runs[run.id] = copy.deepcopy(run)
        self.leases[run.id] = _Lease()

    def get(self, run_id: str) -> Run | None:
        run = self.runs.get(run_id)
        return copy.deepcopy(run) if run else None

    def save(self, run: Run) -> None:
        current = self.runs.get(run.id)
        if current is None or current.version != run.version:
            raise Conflict(f"run {run.id} was changed by someone else meanwhile")
        run.version += 1
        self.runs[run.id] = copy.deepcopy(run)

    def list(
        self,
        *,
        owner: str | None = None,
        states: Collection[RunState] | None = None,
        cloud: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[Run]:
        found = [
            r
            for r in self.runs.values()
            if (owner is None or r.owner == owner)
            and (states is None or r.state in states)
            and (cloud is None or r.cloud == cloud)
        ]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [copy.deepcopy(r) for r in found[offset : offset + limit]]

    def add_event(self, event: RunEvent) -> None:
        self.event_log.append(event)

    def events(self, run_id: str) -> Sequence[RunEvent]:
        return [e for e in self.event_log if e.run_id == run_id]

    def claim(self, run_id: str, worker: str, now: datetime, until: datetime) -> bool:
        lease = self.leases.get(run_id)
        if lease is None:
            return False
        if lease.owner not in (None, worker) and lease.until is not None and lease.until >= now:
            return False
        lease.owner, lease.until = worker, until
        return True

    def release(self, run_id: str, worker: str, next_step_at: datetime | None) -> None:
        lease = self.leases.get(run_id)
        if lease is not None and lease.owner == worker:
            lease.owner, lease.until, lease.next_step_at = None, None, next_step_at

    def clouds(self) -> Sequence[str]:
        return sorted({run.cloud for run in self.runs.values()})

    def due(self, now: datetime) -> Sequence[str]:
        return [
            run.id
            for run in sorted(self.runs.values(), key=lambda r: r.created_at)
            if run.state in TRANSITIONAL
            and (self.leases[run.id].next_step_at is None or self.leases[run.id].next_step_at < now)  # type: ignore[operator]
            and (self.leases[run.id].until is None or self.leases[run.id].until < now)  # type: ignore[operator]
        ]
