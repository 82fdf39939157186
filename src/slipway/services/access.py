"""Who is acting: passwords, dashboard sessions and API tokens.

Only hashes are stored: a slow salted hash for passwords (the
:class:`~slipway.services.ports.PasswordHasher` adapter), SHA-256 for tokens
and session cookies, which are 256-bit random values and need no stretching.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slipway.domain.text import control_character
from slipway.errors import InputError, NotAuthenticated, NotFound, PermissionDenied
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
    ) -> None:
        self._uow = unit_of_work
        self._hasher = hasher
        self._now = clock

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
            uow.commit()

    # -- dashboard sessions ----------------------------------------------------

    def login(self, user: str, password: str) -> WebSession:
        with self._uow() as uow:
            stored = uow.store.password_hash(user)
            if stored is None or not self._hasher.verify(stored, password):
                raise NotAuthenticated("wrong user name or password")
            session = WebSession(user, secrets.token_urlsafe(32), secrets.token_urlsafe(32))
            record = SessionRecord(user, session.csrf, self._now() + SESSION_LIFETIME)
            uow.store.add_session(digest(session.cookie), record)
            uow.commit()
            return session

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
