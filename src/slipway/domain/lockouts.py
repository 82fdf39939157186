"""Log-in lockouts: how many tries an account or a client address gets
before log-ins wait, and for how long.

Tries are counted in a fixed window that opens with the first one. Once
``limit`` tries fall in one window, every further try is refused until the
lockout ends; a try after the lockout but still in the window is counted
and, being past the limit, locks again at once. So an account gets
``limit`` guesses in a window, then one guess per lockout until the window
closes. A record means nothing once both its window and its lockout have
passed, and may then be forgotten.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = ["Attempts", "LockoutRule", "LoginLimits", "account_subject", "address_subject"]


@dataclass(frozen=True)
class LockoutRule:
    """``limit`` tries per ``window_s`` seconds; then ``lockout_s`` seconds of refusals."""

    limit: int
    window_s: float
    lockout_s: float


@dataclass(frozen=True)
class LoginLimits:
    """Failed log-ins per account, and log-ins (failed or not) per client address."""

    account: LockoutRule = LockoutRule(limit=5, window_s=900, lockout_s=300)
    address: LockoutRule = LockoutRule(limit=30, window_s=60, lockout_s=60)


@dataclass(frozen=True)
class Attempts:
    """The tries counted for one account or address in the current window."""

    count: int
    window_start: datetime
    locked_until: datetime | None = None

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until a try is allowed again (0: allowed now)."""
        if self.locked_until is None or self.locked_until <= now:
            return 0
        return max(1, math.ceil((self.locked_until - now).total_seconds()))

    def expires_at(self, rule: LockoutRule) -> datetime:
        """When this record stops mattering: its window and lockout both over."""
        closes = self.window_start + timedelta(seconds=rule.window_s)
        return max(closes, self.locked_until) if self.locked_until else closes

    @staticmethod
    def counted(previous: Attempts | None, rule: LockoutRule, now: datetime) -> Attempts:
        """``previous`` with one more try at ``now``, locked once at the limit."""
        if previous is None or now >= previous.window_start + timedelta(seconds=rule.window_s):
            previous = Attempts(0, now)
        count = previous.count + 1
        locked = now + timedelta(seconds=rule.lockout_s) if count >= rule.limit else None
        return Attempts(count, previous.window_start, locked)


def _subject(kind: str, key: str) -> str:
    # Hashed: a fixed size, whatever a client sends, and no typed names kept.
    return hashlib.sha256(f"{kind}:{key}".encode()).hexdigest()


def account_subject(user: str) -> str:
    """What an account's failures are counted under, whether it exists or not."""
    return _subject("account", user)


def address_subject(address: str) -> str:
    """What a client address's tries are counted under. IPv6 addresses count
    by their /64 network: one subscriber usually holds a whole /64."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return _subject("address", address)
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    if parsed.version == 6:
        return _subject("address", str(ipaddress.ip_network(f"{parsed}/64", strict=False)))
    return _subject("address", str(parsed))
