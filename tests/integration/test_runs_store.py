"""The run store on every store: memory, SQLite and PostgreSQL give the same
runs in the same order for the same filters, and the same target back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update

from slipway.adapters.store.sql import SqlUnitOfWork
from slipway.adapters.store.tables import RunRow
from slipway.domain.run_target import Recipes
from slipway.domain.runs import Run, RunState
from slipway.errors import SlipwayError
from slipway.services.ports import UnitOfWork
from tests.run_targets import a_run_target, stored_by_earlier_deploys

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


@pytest.mark.parametrize(
    "target",
    [
        a_run_target(),
        a_run_target(
            disk=None, platform=None, security_groups=(), ports=(), recipes=Recipes(), user_keys=()
        ),
    ],
    ids=["every-field", "required-fields"],
)
def test_a_run_comes_back_with_the_target_it_was_stored_with(
    store_uow: Callable[[], UnitOfWork], target: Any
) -> None:
    with store_uow() as uow:
        uow.runs.add(a_run(1, "alice", "local", RunState.PENDING, 0))
        uow.runs.add(replace(a_run(2, "alice", "local", RunState.PENDING, 1), target=target))
        uow.commit()
    with store_uow() as uow:
        assert uow.runs.get("run0002").target == target  # type: ignore[union-attr]
        assert [r.target for r in uow.runs.list()] == [target, a_run_target(flavor="small")]


def stored_as(engine: Engine, run_id: str, document: dict[str, Any]) -> None:
    """Put ``document`` into the run's ``target`` column, as another version would."""
    with engine.begin() as connection:
        connection.execute(
            update(RunRow.__table__).where(RunRow.id == run_id).values(target=document)
        )


@pytest.fixture
def stored_run(sql_engine: Engine) -> Engine:
    with SqlUnitOfWork(sql_engine) as uow:
        uow.runs.add(a_run(7, "alice", "local", RunState.READY, 0))
        uow.commit()
    return sql_engine


def test_a_run_stored_by_an_earlier_version_loads(stored_run: Engine) -> None:
    stored_as(stored_run, "run0007", stored_by_earlier_deploys())
    with SqlUnitOfWork(stored_run) as uow:
        assert uow.runs.get("run0007").target == a_run_target()  # type: ignore[union-attr]


def test_a_stored_target_with_a_key_this_version_does_not_know_loads(stored_run: Engine) -> None:
    stored_as(stored_run, "run0007", stored_by_earlier_deploys() | {"zone": "ch-gva-2"})
    with SqlUnitOfWork(stored_run) as uow:
        assert uow.runs.get("run0007").target == a_run_target()  # type: ignore[union-attr]


def test_a_stored_target_without_a_required_key_names_the_run_and_the_key(
    stored_run: Engine,
) -> None:
    broken = stored_by_earlier_deploys()
    del broken["login_user"]
    stored_as(stored_run, "run0007", broken)
    expected = "run run0007: its stored target has no 'login_user'"
    with SqlUnitOfWork(stored_run) as uow:
        with pytest.raises(SlipwayError, match=expected):
            uow.runs.get("run0007")
        with pytest.raises(SlipwayError, match=expected):
            uow.runs.list()
