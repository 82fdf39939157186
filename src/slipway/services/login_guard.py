"""Log-ins that resist guessing: tries are counted in the identity store, per
account and per client address (:mod:`slipway.domain.lockouts`), before the
password is checked, so that tries sent at once — to one server process or to
several sharing the store — count one each, and a locked account costs no
password hash at all."""

from __future__ import annotations

from datetime import datetime

from slipway.domain.lockouts import (
    Attempts,
    LockoutRule,
    LoginLimits,
    account_subject,
    address_subject,
)
from slipway.errors import TooManyAttempts
from slipway.services.ports import IdentityStore

__all__ = ["LoginGuard"]


class LoginGuard:
    def __init__(self, limits: LoginLimits) -> None:
        self._limits = limits

    def count(self, identity: IdentityStore, user: str, address: str | None, now: datetime) -> None:
        """Count a try at ``user``'s password from ``address`` (None: not over
        the network) as a failure until :meth:`passed` says otherwise; raise
        ``TooManyAttempts``, counting nothing, while the account or the address
        must wait. An unknown user is counted as a known one is."""
        counted: list[tuple[str, LockoutRule, str]] = [
            (account_subject(user), self._limits.account, "wrong passwords for this account")
        ]
        if address is not None:
            counted.append((address_subject(address), self._limits.address, "log-ins from here"))
        previous = [identity.attempts_for_update(subject) for subject, _, _ in counted]
        waits = [
            (found.retry_after(now), what)
            for found, (_, _, what) in zip(previous, counted, strict=True)
            if found is not None
        ]
        wait, what = max(waits, default=(0, ""))
        if wait > 0:
            raise TooManyAttempts(
                f"too many {what} lately; try again in {_in_words(wait)}", retry_after=wait
            )
        for found, (subject, rule, _) in zip(previous, counted, strict=True):
            attempts = Attempts.counted(found, rule, now)
            identity.save_attempts(subject, attempts, attempts.expires_at(rule))

    def passed(self, identity: IdentityStore, user: str) -> None:
        """The password was right (or was just set): ``user``'s count starts afresh.
        The address keeps its count: it counts right passwords too."""
        identity.clear_attempts(account_subject(user))

    def forget_expired(self, identity: IdentityStore, now: datetime) -> None:
        """Drop the counts whose window and lockout are over."""
        identity.expire_attempts(now)


def _in_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"
