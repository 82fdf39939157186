"""No request blocks the event loop: while fifty log-ins (each an Argon2
hash) and fifty imports (YAML parsing and store writes) are in flight,
``GET /api/me`` is still answered — the server keeps answering other users.

The costly calls are held at a gate until the test has its answer, so the
test checks *whether* the server answers while they run, not how fast."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.adapters.definitions.loader import LoadedDefinition
from slipway.adapters.security.passwords import Argon2Hasher
from slipway.domain.lockouts import LockoutRule, LoginLimits
from slipway.entrypoints.api.app import create_app
from slipway.entrypoints.api.deps import Services
from slipway.entrypoints.web.session import LOGIN_CSRF_COOKIE
from slipway.services.catalog import CatalogService
from slipway.services.identity import IdentityService
from slipway.services.ports import UnitOfWork
from tests.conftest import WebWorld

CONCURRENT = 50
PATIENCE_S = 30.0  # only for the test to fail rather than hang


class Gate:
    """Holds every caller until opened; counts those waiting."""

    def __init__(self) -> None:
        self.opened = threading.Event()
        self.arrived = threading.Condition()
        self.waiting = 0

    def pass_through(self) -> None:
        with self.arrived:
            self.waiting += 1
            self.arrived.notify_all()
        if not self.opened.wait(PATIENCE_S * 2):
            raise AssertionError("the gate was never opened")

    def wait_for_someone(self) -> bool:
        with self.arrived:
            return self.arrived.wait_for(lambda: self.waiting > 0, PATIENCE_S)


class GatedHasher:
    """Argon2, but a password check waits at the gate first."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.inner = Argon2Hasher(memory_kib=256, time_cost=1)

    def hash(self, password: str) -> str:
        return self.inner.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        self.gate.pass_through()
        return self.inner.verify(password_hash, password)


class GatedUnitOfWork:
    """The store, but a transaction waits at the gate before it starts."""

    def __init__(self, inner: UnitOfWork, gate: Gate) -> None:
        self.inner = inner
        self.gate = gate

    def __enter__(self) -> UnitOfWork:
        self.gate.pass_through()
        return self.inner.__enter__()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.inner.__exit__(exc_type, exc, tb)


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    yield gate
    gate.opened.set()  # never leave a thread waiting


@pytest.fixture
def web_world(examples: list[LoadedDefinition], tmp_path: Path) -> Iterator[WebWorld]:
    """On SQLite: fifty imports at once need a store made for concurrent writers."""
    world = WebWorld(examples, database_url=f"sqlite:///{tmp_path / 'slipway.db'}")
    yield world
    assert world.engine is not None
    world.engine.dispose()


@pytest.fixture
def gated_client(web_world: WebWorld, gate: Gate) -> Iterator[TestClient]:
    """The served catalog where log-ins check passwords, and imports write
    the store, only once the gate opens."""

    def gated_uow() -> Any:
        return GatedUnitOfWork(web_world.uow(), gate)

    # Fifty log-ins at once from one address: limits that let them all through
    # (tests/security/test_login_guessing.py checks the limits themselves).
    roomy = LockoutRule(limit=1000, window_s=60, lockout_s=60)
    services = Services(
        catalog=lambda user: CatalogService(gated_uow, user),
        identity=IdentityService(
            web_world.uow, GatedHasher(gate), limits=LoginLimits(account=roomy, address=roomy)
        ),
    )
    with TestClient(create_app(services), raise_server_exceptions=False) as client:
        client.cookies.set(LOGIN_CSRF_COOKIE, "form")
        yield client


def in_threads(calls: list[Callable[[], Any]]) -> tuple[list[threading.Thread], list[Any]]:
    answers: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    return threads, answers


def test_me_is_answered_while_fifty_logins_and_fifty_imports_are_in_flight(
    gated_client: TestClient, web_world: WebWorld, gate: Gate
) -> None:
    client = gated_client
    password = {"username": "bob", "password": WebWorld.PASSWORD, "csrf_token": "form"}

    def log_in() -> int:
        return client.post("/login", data=password, follow_redirects=False).status_code

    def import_one(number: int) -> int:
        return client.post(
            f"/api/modules?name=alice/concurrent-{number}",
            content="kind: image\ndescription: one of many\n",
            headers=web_world.headers("alice"),
        ).status_code

    calls: list[Callable[[], Any]] = [log_in] * CONCURRENT
    calls += [lambda n=n: import_one(n) for n in range(CONCURRENT)]  # type: ignore[misc]
    busy, answers = in_threads(calls)
    assert gate.wait_for_someone(), "no log-in or import reached the gate"

    me, me_answers = in_threads([lambda: client.get("/api/me", headers=web_world.headers("carol"))])
    me[0].join(PATIENCE_S)
    answer = me_answers[0]
    still_in_flight = sum(thread.is_alive() for thread in busy)

    gate.opened.set()
    for thread in busy:
        thread.join(PATIENCE_S)
    assert answer is not None, "GET /api/me was not answered while log-ins and imports ran"
    assert answer.status_code == 200 and answer.json()["user"] == "carol"
    assert still_in_flight == 2 * CONCURRENT
    assert answers == [303] * CONCURRENT + [201] * CONCURRENT
