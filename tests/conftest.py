"""Shared fixtures: the example definitions, and catalog services over the
in-memory store, SQLite and (when SLIPWAY_TEST_POSTGRES_URL is set) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_paths
from slipway.adapters.keys import new_key_pair
from slipway.adapters.security.passwords import Argon2Hasher
from slipway.adapters.store.identity_memory import MemoryIdentityStore
from slipway.adapters.store.memory import MemoryStore, MemoryUnitOfWork
from slipway.adapters.store.runs_memory import MemoryRunStore
from slipway.connectors.fake import FakeConnector
from slipway.errors import CloudError
from slipway.services.catalog import CatalogService
from slipway.services.deploy import RunService
from slipway.services.identity import IdentityService
from slipway.services.ports import UnitOfWork

if TYPE_CHECKING:
    from sqlalchemy import Engine

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
POSTGRES_URL = os.environ.get("SLIPWAY_TEST_POSTGRES_URL")


@pytest.fixture(scope="session")
def examples() -> list[LoadedDefinition]:
    return load_paths([EXAMPLES], REPO)


def cheap_hasher() -> Argon2Hasher:
    """Argon2 at its cheapest: these tests check who may log in, not hash strength."""
    return Argon2Hasher(memory_kib=256, time_cost=1)


def memory_units() -> Callable[[], UnitOfWork]:
    """Units of work that share one set of fresh in-memory stores."""
    store, runs, identity = MemoryStore(), MemoryRunStore(), MemoryIdentityStore()
    return lambda: MemoryUnitOfWork(store, runs, identity)


@pytest.fixture
def memory_uow() -> Callable[[], UnitOfWork]:
    return memory_units()


@pytest.fixture
def service(memory_uow: Callable[[], UnitOfWork]) -> Callable[[str], CatalogService]:
    """``service(user)``: the catalog as ``user`` sees it, all on one in-memory store."""
    return lambda user: CatalogService(memory_uow, user)


@pytest.fixture
def people(memory_uow: Callable[[], UnitOfWork]) -> IdentityService:
    """Users, groups and credentials on the same in-memory store as ``service``."""
    return IdentityService(memory_uow, cheap_hasher())


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
        yield memory_units()
        return
    from slipway.adapters.store.sql import SqlUnitOfWork

    engine = _migrated_engine(request, tmp_path)
    yield lambda: SqlUnitOfWork(engine)
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def sql_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated engine over each SQL database in turn, for tests that read
    or write the tables themselves."""
    engine = _migrated_engine(request, tmp_path)
    yield engine
    engine.dispose()


def _migrated_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    from slipway.adapters.store.database import make_engine, migrate

    url = (
        _sqlite_url(tmp_path)
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    engine = make_engine(url)
    migrate(engine)
    return engine


@pytest.fixture(scope="session")
def built_image() -> Path:
    """The qcow2 built from examples/recipes/debian-12-minimal.yaml, cached by
    recipe hash. Read-only: copy it before changing anything."""
    from tests.imagekit_support import EXAMPLE_RECIPE, build_unavailable_reason, cached_build

    reason = build_unavailable_reason()
    if reason is not None:
        pytest.skip(f"cannot build the example image: {reason}")
    return cached_build(EXAMPLE_RECIPE)


# -- the API and the dashboard ------------------------------------------------


class _PlainVault:
    """Seals nothing: these tests look at runs, not at encryption."""

    def seal(self, secret: str) -> str:
        return secret

    def open(self, sealed: str) -> str:
        return sealed


def _fake_local_cloud() -> FakeConnector:
    from slipway.domain.machines import CloudImage

    return FakeConnector("local", images=[CloudImage("debian-12-minimal", "debian")])


class WebWorld:
    """A served catalog with users, a group, modules at every sharing level
    and an API token per user, all on one in-memory store. The admin imported
    the examples and shares them with everyone, as a site would; alice owns
    copies of debian-12 kept private, shared with the team and public."""

    PASSWORD = "correct horse battery"

    def __init__(
        self,
        examples: list[LoadedDefinition],
        *,
        dashboard: bool = True,
        database_url: str | None = None,
    ) -> None:
        from slipway.domain.modules import Right
        from slipway.entrypoints.api.app import create_app
        from slipway.entrypoints.api.deps import Services

        memory = memory_units()
        engine = None
        if database_url is not None:
            from slipway.adapters.store.database import make_engine, migrate

            engine = make_engine(database_url)
            migrate(engine)

        def uow() -> UnitOfWork:
            if engine is not None:
                from slipway.adapters.store.sql import SqlUnitOfWork

                return SqlUnitOfWork(engine)
            return memory()

        self.engine = engine

        self.identity = IdentityService(uow, cheap_hasher())
        self.cloud, self.queued = _fake_local_cloud(), []
        self.vault = _PlainVault()

        def connectors(name: str) -> FakeConnector:
            if name != "local":
                raise CloudError("unreachable: connection refused", cloud=name)
            return self.cloud

        def runs(user: str) -> RunService:
            return RunService(
                uow, CatalogService(uow, user), connectors, self.vault, self, new_key_pair
            )

        self.uow = uow
        self.connectors = connectors
        self.services = Services(lambda user: CatalogService(uow, user), self.identity, runs)
        self.identity.ensure_first_admin()
        admin = self.services.catalog("admin")
        for user in ("alice", "bob", "carol"):
            self.identity.add_user("admin", user)
            self.identity.set_password("admin", user, self.PASSWORD)
        self.identity.add_group("admin", "team", ["carol"])
        admin.import_files(examples)
        for example in examples:
            admin.share(
                example.name,
                group=None,
                group_rights=frozenset(),
                public_rights=frozenset({Right.VIEW, Right.DEPLOY}),
            )
        alice = self.services.catalog("alice")
        alice.copy("examples/images/debian-12", "alice/private")
        alice.copy("examples/images/debian-12", "alice/team")
        alice.copy("examples/images/debian-12", "alice/public")
        alice.share(
            "alice/team",
            group="team",
            group_rights=frozenset({Right.VIEW}),
            public_rights=frozenset(),
        )
        alice.share(
            "alice/public",
            group=None,
            group_rights=frozenset(),
            public_rights=frozenset({Right.VIEW}),
        )
        self.tokens = {
            user: self.identity.create_token(user, "tests").token
            for user in ("admin", "alice", "bob", "carol")
        }
        self.app = create_app(self.services, dashboard=dashboard)

    def enqueue(self, run_id: str, delay: float = 0.0) -> None:
        self.queued.append(run_id)

    def headers(self, user: str) -> dict[str, str]:
        """Authorization for ``user``; none for "anonymous"."""
        return {"Authorization": f"Bearer {self.tokens[user]}"} if user in self.tokens else {}


@pytest.fixture
def web_world(examples: list[LoadedDefinition]) -> WebWorld:
    return WebWorld(examples)
