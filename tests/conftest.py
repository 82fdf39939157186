"""Shared fixtures: the example definitions, and catalog services over the
in-memory store, SQLite and (when SLIPWAY_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_paths
from slipway.adapters.store.memory import MemoryStore, MemoryUnitOfWork
from slipway.adapters.store.runs_memory import MemoryRunStore
from slipway.services.catalog import CatalogService
from slipway.services.ports import UnitOfWork

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
POSTGRES_URL = os.environ.get("SLIPWAY_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def examples() -> list[LoadedDefinition]:
    return load_paths([EXAMPLES], REPO)


@pytest.fixture
def memory_uow() -> Callable[[], UnitOfWork]:
    store, runs = MemoryStore(), MemoryRunStore()
    return lambda: MemoryUnitOfWork(store, runs)


@pytest.fixture
def service(memory_uow: Callable[[], UnitOfWork]) -> Callable[[str], CatalogService]:
    """``service(user)``: the catalog as ``user`` sees it, all on one in-memory store."""
    return lambda user: CatalogService(memory_uow, user)


def _sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'slipway.db'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip("SLIPWAY_TEST_POSTGRES_URL is not set: no PostgreSQL to test against")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"slipway_test_{uuid.uuid4().hex[:12]}"
    admin_url = make_url(POSTGRES_URL).set(drivername="postgresql+psycopg")
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE ends connections a test left open, so the drop never hangs.
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store_uow(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], UnitOfWork]]:
    """A unit-of-work factory over each store implementation in turn."""
    if request.param == "memory":
        store, runs = MemoryStore(), MemoryRunStore()
        yield lambda: MemoryUnitOfWork(store, runs)
        return
    from slipway.adapters.store.database import make_engine, migrate
    from slipway.adapters.store.sql import SqlUnitOfWork

    url = (
        _sqlite_url(tmp_path)
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    migrate(engine)
    yield lambda: SqlUnitOfWork(engine)
    engine.dispose()


@pytest.fixture(scope="session")
def built_image() -> Path:
    """The qcow2 built from examples/recipes/debian-12-minimal.yaml, cached by
    recipe hash. Read-only: copy it before changing anything."""
    from tests.imagekit_support import EXAMPLE_RECIPE, build_unavailable_reason, cached_build

    reason = build_unavailable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the example image: {reason}")
    return cached_build(EXAMPLE_RECIPE)
