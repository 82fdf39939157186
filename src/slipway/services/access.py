"""Who is acting: passwords, dashboard sessions and API tokens.

Only hashes are stored: a slow salted hash for passwords (the
:class:`~slipway.services.ports.PasswordHasher` adapter), SHA-256 for tokens
and session cookies, which are 256-bit random values and need no stretching.

Log-ins resist guessing: tries are counted in the store, per account and per
client address (:mod:`slipway.domain.lockouts`), before the password is
checked, so every server process sharing the store refuses alike; an
unknown user costs one password verification, as a known one does; a new
password ends the user's dashboard sessions (their API tokens stay).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slipway.domain.lockouts import (
    Attempts,
    LockoutRule,
    LoginLimits,
    account_subject,
    address_subject,
)
from slipway.domain.text import control_character
from slipway.errors import (
    InputError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    TooManyAttempts,
)
from slipway.services.ports import PasswordHasher, SessionRecord, TokenRecord, UnitOfWork

__all__ = [
    "ANONYMOUS",
    "FIRST_ADMIN",
    "AccessService",
    "NewToken",
    "WebSession",
    "check_user_name",
]

ANONYMOUS = "anonymous"
"""The acting user when nobody is logged in: sees what is public, nothing else."""

FIRST_ADMIN = "admin"
MIN_PASSWORD = 8
SESSION_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "slw_"  # makes a leaked token easy to recognise in logs and scanners

_USER_NAME = re.compile(r"^[a-z_][a-z0-9_.\-]{0,63}$")


def check_user_name(name: str) -> None:
    if not _USER_NAME.match(name) or name == ANONYMOUS:
        raise InputError(
            f"{name!r} is not a user name (lower-case letters, digits, _ . -; not {ANONYMOUS!r})",
            field="name",
        )


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class WebSession:
    user: str
    cookie: str  # shown once, to the browser
    csrf: str


@dataclass(frozen=True)
class NewToken:
    record: TokenRecord
    token: str  # shown once


class AccessService:
    def __init__(
        self,
        unit_of_work: Callable[[], UnitOfWork],
        hasher: PasswordHasher,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        limits: LoginLimits = LoginLimits(),
    ) -> None:
        self._uow = unit_of_work
        self._hasher = hasher
        self._now = clock
        self._limits = limits
        self._dummy_hash: str | None = None

    # -- passwords -------------------------------------------------------------

    def ensure_first_admin(self) -> str | None:
        """On a store where nobody has a password yet, give the admin user
        (made when missing) a random password and return it; else None."""
        with self._uow() as uow:
            if uow.store.has_passwords():
                return None
            password = secrets.token_urlsafe(12)
            uow.store.ensure_user(FIRST_ADMIN, admin=True)
            uow.store.set_password_hash(FIRST_ADMIN, self._hasher.hash(password))
            uow.commit()
            return password

    def set_password(self, actor: str, user: str, password: str) -> None:
        """Set ``user``'s password: the user themself or an admin."""
        if len(password) < MIN_PASSWORD:
            raise InputError(
                f"a password needs at least {MIN_PASSWORD} characters", field="password"
            )
        with self._uow() as uow:
            if actor != user and not uow.store.is_admin(actor):
                raise PermissionDenied(f"only {user} or an admin can set {user}'s password")
            if not uow.store.user_exists(user):
                raise NotFound(f"user {user} does not exist")
            uow.store.set_password_hash(user, self._hasher.hash(password))
            # Whoever knew the old password is logged out; API tokens, made
            # on purpose and revocable one by one, stay.
            uow.store.end_sessions(user)
            uow.store.clear_attempts(account_subject(user))
            uow.commit()

    # -- dashboard sessions ----------------------------------------------------

    def login(self, user: str, password: str, address: str | None = None) -> WebSession:
        """A session for ``user`` if ``password`` is theirs, tried from the
        client ``address`` (None: not over the network). Raises
        ``TooManyAttempts`` while the account or the address must wait, and
        ``NotAuthenticated``, in the same words, for an unknown user and a
        wrong password."""
        account = account_subject(user)
        counted = [(account, self._limits.account, "wrong passwords for this account")]
        if address is not None:
            counted.append((address_subject(address), self._limits.address, "log-ins from here"))
        try:
            stored = self._count_try(user, counted)
            # Exactly one verification whether the user exists or not, so the
            # time taken does not tell which.
            matches = self._hasher.verify(stored or self._unknown_user_hash(), password)
            if stored is None or not matches:
                raise NotAuthenticated("wrong user name or password")
            session = WebSession(user, secrets.token_urlsafe(32), secrets.token_urlsafe(32))
            with self._uow() as uow:
                uow.store.clear_attempts(account)  # a right password starts afresh
                record = SessionRecord(user, session.csrf, self._now() + SESSION_LIFETIME)
                uow.store.add_session(digest(session.cookie), record)
                uow.commit()
            return session
        finally:
            self._forget_expired()

    def _count_try(self, user: str, counted: list[tuple[str, LockoutRule, str]]) -> str | None:
        """Count one try for each subject, as a failure until the password is
        found right; refuse it if one of them must wait. Counted before the
        password is checked, so that tries in flight at once count as many.
        Returns ``user``'s password hash (None: no such user, or no password)."""
        now = self._now()
        with self._uow() as uow:
            previous = [uow.store.attempts_for_update(subject) for subject, _, _ in counted]
            waits = [
                (found.retry_after(now), what)
                for found, (_, _, what) in zip(previous, counted, strict=True)
                if found is not None
            ]
            wait, what = max(waits, default=(0, ""))
            if wait > 0:
                raise TooManyAttempts(
                    f"too many {what} lately; try again in {_in_words(wait)}",
                    retry_after=wait,
                )
            for found, (subject, rule, _) in zip(previous, counted, strict=True):
                attempts = Attempts.counted(found, rule, now)
                uow.store.save_attempts(subject, attempts, attempts.expires_at(rule))
            stored = uow.store.password_hash(user)
            uow.commit()
        return stored

    def _unknown_user_hash(self) -> str:
        """A hash of the same algorithm and cost as real ones, of no password."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        return self._dummy_hash

    def _forget_expired(self) -> None:
        """Forget tries and sessions that no longer matter, so neither table grows
        without bound. A transaction of its own: it waits on no log-in in flight."""
        with self._uow() as uow:
            now = self._now()
            uow.store.expire_attempts(now)
            uow.store.expire_sessions(now)
            uow.commit()

    def session(self, cookie: str) -> SessionRecord | None:
        """The live session behind ``cookie``, or None (unknown or expired)."""
        with self._uow() as uow:
            record = uow.store.session_of(digest(cookie))
        if record is None or record.expires_at <= self._now():
            return None
        return record

    def logout(self, cookie: str) -> None:
        with self._uow() as uow:
            uow.store.delete_session(digest(cookie))
            uow.commit()

    # -- API tokens ------------------------------------------------------------

    def create_token(self, user: str, name: str) -> NewToken:
        """A new token for ``user``; the token itself is returned once, never stored."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InputError("a token needs a name of 1 to 200 characters", field="name")
        if (found := control_character(name)) is not None:
            raise InputError(
                f"a token's name may not hold the control character {found}", field="name"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = self._now()  # the time kept is the time shown
        with self._uow() as uow:
            if not uow.store.user_exists(user):
                uow.store.ensure_user(user, admin=not uow.store.has_users())
            number = uow.store.add_token(user, name, digest(token), now)
            uow.commit()
        return NewToken(TokenRecord(number, user, name, now), token)

    def token_user(self, token: str) -> str | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._uow() as uow:
            return uow.store.token_user(digest(token))

    def tokens(self, user: str) -> list[TokenRecord]:
        with self._uow() as uow:
            return list(uow.store.tokens_of(user))

    def revoke_token(self, user: str, token_id: int) -> None:
        with self._uow() as uow:
            if not uow.store.delete_token(user, token_id):
                raise NotFound(f"{user} has no token {token_id}")
            uow.commit()

    def whoami(self, user: str) -> tuple[bool, frozenset[str], frozenset[str]]:
        """(admin, groups, groups whose namespace they edit) of ``user``."""
        with self._uow() as uow:
            return uow.store.is_admin(user), uow.store.groups_of(user), uow.store.editor_of(user)


def _in_words(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    return f"{-(-seconds // 60)} minutes"
