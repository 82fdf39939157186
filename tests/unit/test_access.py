"""Passwords, sessions and API tokens on the in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipway.adapters.security.passwords import Argon2Hasher
from slipway.adapters.store.memory import MemoryStore, MemoryUnitOfWork
from slipway.errors import InputError, NotAuthenticated, NotFound, PermissionDenied
from slipway.services.access import ANONYMOUS, FIRST_ADMIN, AccessService
from slipway.services.catalog import CatalogService
from slipway.services.ports import UnitOfWork


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def uow_of(store: MemoryStore) -> UnitOfWork:
    return MemoryUnitOfWork(store)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def access(store: MemoryStore, clock: Clock) -> AccessService:
    return AccessService(lambda: uow_of(store), Argon2Hasher(memory_kib=256, time_cost=1), clock)


def test_the_first_start_makes_an_admin_with_a_password_once(access: AccessService) -> None:
    password = access.ensure_first_admin()
    assert password is not None and len(password) >= 16
    assert access.ensure_first_admin() is None
    assert access.login(FIRST_ADMIN, password).user == FIRST_ADMIN
    assert access.whoami(FIRST_ADMIN) == (True, frozenset(), frozenset())


def test_only_hashes_are_stored(access: AccessService, store: MemoryStore) -> None:
    password = access.ensure_first_admin()
    assert password is not None
    token = access.create_token(FIRST_ADMIN, "ci").token
    session = access.login(FIRST_ADMIN, password)
    stored = repr(store.__dict__)
    assert password not in stored and token not in stored and session.cookie not in stored


def test_a_wrong_password_and_an_unknown_user_read_the_same(access: AccessService) -> None:
    access.ensure_first_admin()
    for user, password in ((FIRST_ADMIN, "wrong password"), ("nobody", "whatever1")):
        with pytest.raises(NotAuthenticated, match="wrong user name or password"):
            access.login(user, password)


def test_sessions_expire_and_end_at_log_out(access: AccessService, clock: Clock) -> None:
    password = access.ensure_first_admin()
    assert password is not None
    session = access.login(FIRST_ADMIN, password)
    found = access.session(session.cookie)
    assert found is not None and found.csrf == session.csrf
    clock.now += timedelta(hours=13)
    assert access.session(session.cookie) is None
    clock.now -= timedelta(hours=13)
    access.logout(session.cookie)
    assert access.session(session.cookie) is None


def test_tokens_identify_their_user_until_revoked(access: AccessService) -> None:
    made = access.create_token("alice", "laptop")
    assert access.token_user(made.token) == "alice"
    assert access.token_user(made.token + "x") is None
    assert access.token_user("not-a-token") is None
    with pytest.raises(NotFound):
        access.revoke_token("bob", made.record.id)
    access.revoke_token("alice", made.record.id)
    assert access.token_user(made.token) is None
    with pytest.raises(InputError):
        access.create_token("alice", "  ")


def test_passwords_are_set_by_their_user_or_an_admin(
    access: AccessService, store: MemoryStore
) -> None:
    access.ensure_first_admin()
    admin = CatalogService(lambda: uow_of(store), FIRST_ADMIN)
    admin.add_user("alice")
    admin.add_user("bob")
    access.set_password(FIRST_ADMIN, "alice", "long enough")
    access.set_password("alice", "alice", "longer still")
    with pytest.raises(PermissionDenied):
        access.set_password("bob", "alice", "not yours!")
    with pytest.raises(InputError, match="at least 8"):
        access.set_password("alice", "alice", "short")
    with pytest.raises(NotFound):
        access.set_password(FIRST_ADMIN, "carol", "long enough")


def test_nobody_can_be_named_anonymous(store: MemoryStore, access: AccessService) -> None:
    access.ensure_first_admin()
    with pytest.raises(InputError):
        CatalogService(lambda: uow_of(store), FIRST_ADMIN).add_user(ANONYMOUS)
