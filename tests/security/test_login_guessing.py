"""Log-ins resist guessing: tries are limited per account and per client
address, in the store, so that several server processes refuse alike; the
refusal is a 429 with ``Retry-After``; and a password change logs out every
session that knew the old one."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from slipway.adapters.store.database import make_engine, migrate
from slipway.adapters.store.sql import SqlUnitOfWork
from slipway.domain.lockouts import LockoutRule, LoginLimits
from slipway.entrypoints.api import problems
from slipway.errors import NotAuthenticated, TooManyAttempts
from slipway.services.identity import IdentityService
from tests.conftest import WebWorld
from tests.integration.test_dashboard_pages import login
from tests.security.conftest import problem

HTML = {"Accept": "text/html"}


def try_form(client: TestClient, user: str, password: str) -> Any:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    return client.post(
        "/login",
        data={"csrf_token": token[1], "username": user, "password": password, "next": "/"},
        headers=HTML,
        follow_redirects=False,
    )


def test_the_dashboard_refuses_a_sixth_wrong_password_with_429_and_says_when(
    client: TestClient,
) -> None:
    for _ in range(5):
        assert try_form(client, "alice", "wrong password").status_code == 401
    refused = try_form(client, "alice", WebWorld.PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "300"
    assert "Too many wrong passwords for this account lately; try again in 5 minutes." in (
        refused.text
    )
    assert 'name="password"' in refused.text  # the form is still there
    assert try_form(client, "bob", WebWorld.PASSWORD).status_code == 303


def test_the_dashboard_refuses_an_address_after_thirty_tries_a_minute(
    client: TestClient,
) -> None:
    for number in range(30):
        assert try_form(client, f"guess{number}", "wrong password").status_code == 401
    refused = try_form(client, "bob", WebWorld.PASSWORD)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert "Too many log-ins from here lately" in refused.text


def test_too_many_attempts_is_a_429_problem_with_retry_after() -> None:
    app = FastAPI()
    problems.install(app)

    @app.get("/api/guess")
    def guess() -> None:
        raise TooManyAttempts("too many wrong passwords lately", retry_after=42)

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/api/guess")
    body = problem(answer, 429)
    assert answer.headers["Retry-After"] == "42"
    assert body == {
        "type": "/problems/too-many-requests",
        "title": "Too many requests",
        "status": 429,
        "detail": "too many wrong passwords lately",
        "retry_after": 42,
    }


def test_a_session_from_before_a_password_change_is_logged_out(
    client: TestClient, web_world: WebWorld
) -> None:
    login(client, "alice")
    assert client.get("/runs", headers=HTML).status_code == 200
    changed = client.put(
        "/api/users/alice/password",
        json={"password": "a brand new password"},
        headers=web_world.headers("alice"),
    )
    assert changed.status_code == 204
    page = client.get("/runs", headers=HTML, follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    problem(client.get("/api/tokens"), 401)
    # The token, made on purpose, still works.
    listed = client.get("/api/tokens", headers=web_world.headers("alice"))
    assert listed.status_code == 200


# -- several server processes on one store --------------------------------------


class SlowHasher:
    """Verifies slowly, as Argon2 does, so that log-ins overlap; counts checks."""

    def __init__(self) -> None:
        self.verifications = 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        return f"slow${password}"

    def verify(self, password_hash: str, password: str) -> bool:
        with self.lock:
            self.verifications += 1
        time.sleep(0.05)
        return password_hash == f"slow${password}"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def test_tries_at_once_through_two_processes_are_each_counted(database_url: str) -> None:
    """Two engines stand for two server processes: each has its own pool,
    and on SQLite its own writer lock, so only the store keeps them apart."""
    engines = [make_engine(database_url) for _ in range(2)]
    migrate(engines[0])
    hasher = SlowHasher()
    limits = LoginLimits(account=LockoutRule(limit=5, window_s=900, lockout_s=300))
    services = [
        IdentityService(lambda engine=engine: SqlUnitOfWork(engine), hasher, limits=limits)
        for engine in engines
    ]
    services[0].ensure_first_admin()
    services[0].add_user("admin", "alice")
    services[0].set_password("admin", "alice", "alice's password")

    start = threading.Barrier(12)
    outcomes: list[str] = []

    def guess(number: int) -> None:
        start.wait()
        try:
            services[number % 2].login("alice", f"guess {number}", f"192.0.2.{number}")
        except NotAuthenticated:
            outcomes.append("wrong")
        except TooManyAttempts:
            outcomes.append("refused")

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    assert sorted(outcomes) == ["refused"] * 7 + ["wrong"] * 5
    assert hasher.verifications == 5
