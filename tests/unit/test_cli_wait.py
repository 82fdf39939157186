"""``deploy --wait`` (and ``terminate --wait``) running out of time is not bad
input: the command exits 8, saying that the run goes on and how to follow it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from huey import MemoryHuey

from slipway.domain.runs import Run, RunState
from slipway.entrypoints.cli.runs import _wait
from slipway.errors import InputError, StillRunning
from slipway.services.runner import ReconcileReport
from tests.run_targets import a_run_target

NOW = datetime(2026, 11, 29, tzinfo=UTC)


@dataclass
class StuckRuns:
    """A run that stays where it is, however long one waits."""

    run: Run

    def get(self, run_id: str) -> Run:
        assert run_id == self.run.id
        return self.run


@dataclass
class IdleRunner:
    def reconcile(self) -> ReconcileReport:
        return ReconcileReport()

    def requeue_due(self, enqueue: Any) -> None:
        pass


@dataclass
class Queue:
    queued: list[str] = field(default_factory=list)

    def enqueue(self, run_id: str, delay: float = 0.0) -> None:
        self.queued.append(run_id)


@dataclass
class StuckRuntime:
    """What waiting uses of a runtime: runs, a runner and a queue for the
    embedded worker."""

    runs: StuckRuns
    runner: IdleRunner = field(default_factory=IdleRunner)
    queue: Queue = field(default_factory=Queue)
    huey: MemoryHuey = field(default_factory=lambda: MemoryHuey("test"))


@pytest.fixture
def runtime() -> StuckRuntime:
    run = Run(
        "r1",
        "alice",
        "alice/web",
        "local",
        NOW,
        NOW,
        a_run_target(),
        state=RunState.CONTEXTUALIZING,
    )
    return StuckRuntime(StuckRuns(run))


def test_running_out_of_time_exits_8_and_says_the_run_goes_on(runtime: StuckRuntime) -> None:
    with pytest.raises(StillRunning) as caught:
        _wait(runtime, "r1", frozenset({RunState.READY}), timeout=0)
    error = caught.value
    assert error.exit_code == 8 and not isinstance(error, InputError)
    assert "run r1 is still contextualizing, and goes on" in error.message
    assert error.hint is not None and "slipway run show r1" in error.hint


def test_a_run_that_gets_there_is_returned(runtime: StuckRuntime) -> None:
    runtime.runs.run.state = RunState.READY
    assert _wait(runtime, "r1", frozenset({RunState.READY}), timeout=0).state is RunState.READY
