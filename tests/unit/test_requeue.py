"""The sweeper re-queues runs a dead worker left behind, and only those."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from slipway.adapters.definitions.loader import LoadedDefinition
from slipway.domain.runs import RunState
from slipway.services.ports import UnitOfWork
from tests.unit.test_runs import World


def test_a_step_waiting_in_a_busy_queue_is_not_queued_twice(
    memory_uow: Callable[[], UnitOfWork], examples: list[LoadedDefinition], tmp_path: Path
) -> None:
    world = World(memory_uow, examples, tmp_path)
    run_id = world.deploy()
    delay = world.runner.advance(run_id)  # → booting, the first poll due in `delay` s
    assert world.runs.get(run_id).state is RunState.BOOTING and delay
    world.clock.tick(delay + 1)  # the poll is a second late: the queue is busy
    assert world.runner.requeue_due(lambda _: None) == []
    world.clock.tick(60)  # long overdue: its worker is gone
    assert world.runner.requeue_due(lambda _: None) == [run_id]
