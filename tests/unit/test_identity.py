"""Users, groups, passwords, sessions, API tokens and log-in lockouts on the
in-memory store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from slipway.adapters.security.passwords import Argon2Hasher
from slipway.adapters.store.identity_memory import MemoryIdentityStore
from slipway.adapters.store.memory import MemoryUnitOfWork
from slipway.domain.lockouts import LockoutRule, LoginLimits
from slipway.errors import (
    InputError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from slipway.services.identity import ANONYMOUS, FIRST_ADMIN, IdentityService
from slipway.services.ports import UnitOfWork


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def store() -> MemoryIdentityStore:
    return MemoryIdentityStore()


def uow_of(store: MemoryIdentityStore) -> UnitOfWork:
    return MemoryUnitOfWork(identity=store)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def access(store: MemoryIdentityStore, clock: Clock) -> IdentityService:
    return IdentityService(lambda: uow_of(store), Argon2Hasher(memory_kib=256, time_cost=1), clock)


def test_the_first_start_makes_an_admin_with_a_password_once(access: IdentityService) -> None:
    password = access.ensure_first_admin()
    assert password is not None and len(password) >= 16
    assert access.ensure_first_admin() is None
    assert access.login(FIRST_ADMIN, password).user == FIRST_ADMIN
    assert access.whoami(FIRST_ADMIN) == (True, frozenset(), frozenset())


def test_only_hashes_are_stored(access: IdentityService, store: MemoryIdentityStore) -> None:
    password = access.ensure_first_admin()
    assert password is not None
    token = access.create_token(FIRST_ADMIN, "ci").token
    session = access.login(FIRST_ADMIN, password)
    stored = repr(store.__dict__)
    assert password not in stored and token not in stored and session.cookie not in stored


def test_a_wrong_password_and_an_unknown_user_read_the_same(access: IdentityService) -> None:
    access.ensure_first_admin()
    for user, password in ((FIRST_ADMIN, "wrong password"), ("nobody", "whatever1")):
        with pytest.raises(NotAuthenticated, match="wrong user name or password"):
            access.login(user, password)


def test_sessions_expire_and_end_at_log_out(access: IdentityService, clock: Clock) -> None:
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


def test_tokens_identify_their_user_until_revoked(access: IdentityService) -> None:
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
    access: IdentityService,
) -> None:
    access.ensure_first_admin()
    access.add_user(FIRST_ADMIN, "alice")
    access.add_user(FIRST_ADMIN, "bob")
    access.set_password(FIRST_ADMIN, "alice", "long enough")
    access.set_password("alice", "alice", "longer still")
    with pytest.raises(PermissionDenied):
        access.set_password("bob", "alice", "not yours!")
    with pytest.raises(InputError, match="at least 8"):
        access.set_password("alice", "alice", "short")
    with pytest.raises(NotFound):
        access.set_password(FIRST_ADMIN, "carol", "long enough")


def test_nobody_can_be_named_anonymous(access: IdentityService) -> None:
    access.ensure_first_admin()
    with pytest.raises(InputError):
        access.add_user(FIRST_ADMIN, ANONYMOUS)


# -- guessing ------------------------------------------------------------------


class CountingHasher:
    """A fast stand-in for Argon2 that counts its calls."""

    def __init__(self) -> None:
        self.hashes = 0
        self.verifications = 0

    def hash(self, password: str) -> str:
        self.hashes += 1
        return f"counted${password}"

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return password_hash == f"counted${password}"


LIMITS = LoginLimits(
    account=LockoutRule(limit=5, window_s=900, lockout_s=300),
    address=LockoutRule(limit=30, window_s=60, lockout_s=60),
)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def guarded(store: MemoryIdentityStore, clock: Clock, hasher: CountingHasher) -> IdentityService:
    """Known limits, alice with a password, and bob without one."""
    guarded = IdentityService(lambda: uow_of(store), hasher, clock, LIMITS)
    guarded.ensure_first_admin()
    guarded.add_user(FIRST_ADMIN, "alice")
    guarded.add_user(FIRST_ADMIN, "bob")
    guarded.set_password(FIRST_ADMIN, "alice", "alice's password")
    return guarded


def wrong(access: IdentityService, user: str, times: int, address: str | None = None) -> None:
    for _ in range(times):
        with pytest.raises(NotAuthenticated, match="wrong user name or password"):
            access.login(user, "not the password", address)


@pytest.mark.parametrize("user", ["alice", "bob", "nobody"], ids=["wrong", "none", "unknown"])
def test_every_failed_log_in_costs_exactly_one_password_verification(
    guarded: IdentityService, hasher: CountingHasher, user: str
) -> None:
    guarded.login("alice", "alice's password")  # the dummy hash, if any, is made by now
    before = hasher.verifications
    wrong(guarded, user, 1)
    assert hasher.verifications == before + 1


def test_five_wrong_passwords_lock_the_account_even_against_the_right_one(
    guarded: IdentityService, hasher: CountingHasher
) -> None:
    wrong(guarded, "alice", 5)
    verified = hasher.verifications
    with pytest.raises(TooManyAttempts, match="try again in 5 minutes") as refused:
        guarded.login("alice", "alice's password")
    assert refused.value.retry_after == 300
    assert hasher.verifications == verified  # a locked account costs no hash
    wrong(guarded, FIRST_ADMIN, 1)  # other accounts go on as before


def test_the_lockout_ends_and_the_right_password_starts_the_count_afresh(
    guarded: IdentityService, clock: Clock
) -> None:
    wrong(guarded, "alice", 5)
    clock.now += timedelta(seconds=300)
    assert guarded.login("alice", "alice's password").user == "alice"
    wrong(guarded, "alice", 4)
    assert guarded.login("alice", "alice's password").user == "alice"


def test_after_a_lockout_each_wrong_password_in_the_window_locks_again(
    guarded: IdentityService, clock: Clock
) -> None:
    wrong(guarded, "alice", 5)
    clock.now += timedelta(seconds=301)
    wrong(guarded, "alice", 1)
    with pytest.raises(TooManyAttempts):
        guarded.login("alice", "alice's password")
    clock.now += timedelta(seconds=900)  # a new window
    wrong(guarded, "alice", 4)


def test_an_unknown_account_locks_as_a_known_one_does(guarded: IdentityService) -> None:
    wrong(guarded, "alice", 5)
    wrong(guarded, "nobody", 5)
    with pytest.raises(TooManyAttempts) as known:
        guarded.login("alice", "x")
    with pytest.raises(TooManyAttempts) as unknown:
        guarded.login("nobody", "x")
    assert (known.value.message, known.value.retry_after) == (
        unknown.value.message,
        unknown.value.retry_after,
    )


def test_an_address_gets_thirty_tries_a_minute_whatever_the_accounts(
    guarded: IdentityService, clock: Clock
) -> None:
    for number in range(30):
        wrong(guarded, f"user{number}", 1, address="192.0.2.1")
    with pytest.raises(TooManyAttempts, match="log-ins from here") as refused:
        guarded.login("alice", "alice's password", "192.0.2.1")
    assert refused.value.retry_after == 60
    assert guarded.login("alice", "alice's password", "192.0.2.2").user == "alice"
    clock.now += timedelta(seconds=60)
    assert guarded.login("alice", "alice's password", "192.0.2.1").user == "alice"


def test_right_passwords_count_against_the_address_too(guarded: IdentityService) -> None:
    for _ in range(30):
        guarded.login("alice", "alice's password", "2001:db8::1")
    with pytest.raises(TooManyAttempts):
        guarded.login("alice", "alice's password", "2001:db8::2")  # the same /64


def test_a_new_password_ends_the_users_sessions_and_keeps_their_tokens(
    guarded: IdentityService,
) -> None:
    first = guarded.login("alice", "alice's password")
    second = guarded.login("alice", "alice's password")
    token = guarded.create_token("alice", "ci").token
    guarded.set_password("alice", "alice", "a new password")
    assert guarded.session(first.cookie) is None and guarded.session(second.cookie) is None
    assert guarded.token_user(token) == "alice"
    assert guarded.login("alice", "a new password").user == "alice"


def test_a_new_password_ends_no_one_elses_session(guarded: IdentityService) -> None:
    guarded.set_password(FIRST_ADMIN, "bob", "bob's password")
    bobs = guarded.login("bob", "bob's password")
    guarded.set_password(FIRST_ADMIN, "alice", "a new password")
    assert guarded.session(bobs.cookie) is not None


def test_a_new_password_lifts_the_lockout(guarded: IdentityService) -> None:
    wrong(guarded, "alice", 5)
    guarded.set_password(FIRST_ADMIN, "alice", "a new password")
    assert guarded.login("alice", "a new password").user == "alice"


def test_tries_and_sessions_that_no_longer_matter_are_forgotten(
    guarded: IdentityService, store: MemoryIdentityStore, clock: Clock
) -> None:
    guarded.login("alice", "alice's password", "192.0.2.1")
    wrong(guarded, "nobody", 5, address="192.0.2.1")
    assert len(store.attempts) == 2 and len(store.sessions) == 1
    clock.now += timedelta(hours=13)
    wrong(guarded, "alice", 1, address="192.0.2.9")
    assert len(store.attempts) == 2  # only the last try's account and address
    assert store.sessions == {}


def test_a_password_changed_while_a_log_in_is_checked_ends_that_log_in_too(
    guarded: IdentityService, hasher: CountingHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    checking = hasher.verify

    def verify_while_the_password_changes(password_hash: str, password: str) -> bool:
        matches = checking(password_hash, password)
        guarded.set_password(FIRST_ADMIN, "alice", "a brand new password")
        return matches

    monkeypatch.setattr(hasher, "verify", verify_while_the_password_changes)
    with pytest.raises(NotAuthenticated):
        guarded.login("alice", "alice's password")
    monkeypatch.setattr(hasher, "verify", checking)
    assert guarded.login("alice", "a brand new password").user == "alice"
