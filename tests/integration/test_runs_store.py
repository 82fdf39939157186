"""The run store's lists on every store: memory, SQLite and PostgreSQL give
the same runs in the same order for the same filters."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from slipway.domain.runs import Run, RunState
from slipway.services.ports import UnitOfWork
from tests.run_targets import a_run_target

START = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def a_run(number: int, owner: str, cloud: str, state: RunState, minutes: int) -> Run:
    created = START + timedelta(minutes=minutes)
    return Run(
        id=f"run{number:04d}",
        owner=owner,
        module="examples/images/debian-12",
        cloud=cloud,
        created_at=created,
        deadline=created + timedelta(minutes=30),
        target=a_run_target(flavor="small"),
        state=state,
        parameters={"cloud": cloud},
        timestamps={"pending": created.isoformat()},
    )


@pytest.fixture
def runs(store_uow: Callable[[], UnitOfWork]) -> list[Run]:
    """Thirty runs of two owners on two clouds in three states; runs 10 to 12
    were created in the same instant."""
    made = [
        a_run(
            n,
            ("alice", "bob")[n % 2],
            ("local", "ultimum")[n // 2 % 2],
            (RunState.TERMINATED, RunState.READY, RunState.FAILED)[n % 3],
            10 if 10 <= n <= 12 else n,
        )
        for n in range(30)
    ]
    with store_uow() as uow:
        for run in reversed(made):
            uow.runs.add(run)
        uow.commit()
    return made


def newest_first(runs: list[Run]) -> list[str]:
    return [r.id for r in sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)]


def listed(uow: Callable[[], UnitOfWork], **query: object) -> list[str]:
    with uow() as unit:
        return [r.id for r in unit.runs.list(**query)]  # type: ignore[arg-type]


def test_runs_are_listed_newest_first_and_ties_by_id(
    store_uow: Callable[[], UnitOfWork], runs: list[Run]
) -> None:
    found = listed(store_uow)
    assert found == newest_first(runs)
    assert found.index("run0012") < found.index("run0011") < found.index("run0010")


def test_owner_state_and_cloud_filters_combine(
    store_uow: Callable[[], UnitOfWork], runs: list[Run]
) -> None:
    def expected(owner: str | None, states: set[RunState] | None, cloud: str | None) -> list[str]:
        return newest_first(
            [
                r
                for r in runs
                if (owner is None or r.owner == owner)
                and (states is None or r.state in states)
                and (cloud is None or r.cloud == cloud)
            ]
        )

    for owner in (None, "alice"):
        for states in (None, {RunState.READY}, {RunState.READY, RunState.FAILED}):
            for cloud in (None, "ultimum"):
                query = {"owner": owner, "states": states, "cloud": cloud}
                assert listed(store_uow, **query) == expected(owner, states, cloud), query
    assert listed(store_uow, owner="carol") == []
    assert listed(store_uow, states=[RunState.PENDING]) == []


def test_pages_follow_each_other_without_gaps_or_repeats(
    store_uow: Callable[[], UnitOfWork], runs: list[Run]
) -> None:
    pages = [listed(store_uow, owner="bob", limit=4, offset=o) for o in range(0, 16, 4)]
    assert [r for page in pages for r in page] == newest_first(
        [r for r in runs if r.owner == "bob"]
    )
    assert pages[-1] == newest_first([r for r in runs if r.owner == "bob"])[12:]
    assert listed(store_uow, owner="bob", limit=4, offset=100) == []


def test_a_listed_run_is_the_whole_run(
    store_uow: Callable[[], UnitOfWork], runs: list[Run]
) -> None:
    with store_uow() as uow:
        (first,) = uow.runs.list(owner="alice", cloud="local", limit=1)
        assert first == uow.runs.get(first.id)
    assert first.target.login_user == "debian"
    assert first.summary()["flavor"] == "small"
