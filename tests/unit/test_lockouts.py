"""Lockout rules: tries counted in a fixed window, a lockout at the limit,
and the subjects tries are counted under."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipway.domain.lockouts import Attempts, LockoutRule, account_subject, address_subject

RULE = LockoutRule(limit=3, window_s=600, lockout_s=120)
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def tries(count: int, *, every_s: float = 1) -> Attempts:
    found = None
    for number in range(count):
        found = Attempts.counted(found, RULE, T0 + timedelta(seconds=number * every_s))
    assert found is not None
    return found


def test_tries_below_the_limit_do_not_lock() -> None:
    found = tries(2)
    assert found.count == 2 and found.retry_after(T0 + timedelta(seconds=2)) == 0


def test_the_try_that_reaches_the_limit_locks_for_the_lockout() -> None:
    found = tries(3)
    at = T0 + timedelta(seconds=2)
    assert found.retry_after(at) == 120
    assert found.retry_after(at + timedelta(seconds=119.5)) == 1
    assert found.retry_after(at + timedelta(seconds=120)) == 0


def test_a_try_after_the_lockout_but_in_the_window_locks_again_at_once() -> None:
    found = tries(3)
    later = T0 + timedelta(seconds=200)
    again = Attempts.counted(found, RULE, later)
    assert again.count == 4 and again.retry_after(later) == 120


def test_a_new_window_starts_the_count_afresh() -> None:
    found = tries(3)
    later = T0 + timedelta(seconds=600)
    again = Attempts.counted(found, RULE, later)
    assert (again.count, again.window_start, again.retry_after(later)) == (1, later, 0)


def test_a_record_expires_when_its_window_and_lockout_are_over() -> None:
    assert tries(1).expires_at(RULE) == T0 + timedelta(seconds=600)
    long_lockout = LockoutRule(limit=1, window_s=60, lockout_s=300)
    locked = Attempts.counted(None, long_lockout, T0)
    assert locked.expires_at(long_lockout) == T0 + timedelta(seconds=300)


def test_subjects_keep_accounts_and_addresses_apart_and_hide_the_names() -> None:
    assert account_subject("alice") != address_subject("alice")
    assert len(account_subject("x" * 10_000)) == 64
    assert "alice" not in account_subject("alice")


def test_an_ipv6_client_counts_by_its_64_network_and_a_mapped_ipv4_as_itself() -> None:
    assert address_subject("2001:db8:1:2::1") == address_subject("2001:db8:1:2:ffff::9")
    assert address_subject("2001:db8:1:2::1") != address_subject("2001:db8:1:3::1")
    assert address_subject("::ffff:192.0.2.7") == address_subject("192.0.2.7")
    assert address_subject("192.0.2.7") != address_subject("192.0.2.8")
