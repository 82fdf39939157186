"""Who is who, and who may do what: users, groups, passwords, dashboard
sessions and API tokens — the one home of the rights that are not a module's.

:func:`access_of` is what every other service asks before it checks a right
on a module or a run: whether the user is an admin, their groups, and the
groups in whose namespace they create modules.

Only hashes are stored: a slow salted hash for passwords (the
:class:`~slipway.services.ports.PasswordHasher` adapter), SHA-256 for tokens
and session cookies, which are 256-bit random values and need no stretching.
Log-ins resist guessing (:mod:`slipway.services.login_guard`); an unknown
user costs one password verification, as a known one does; a new password
ends the user's dashboard sessions, and their API tokens stay.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slipway.domain.lockouts import LoginLimits
from slipway.domain.modules import Access
from slipway.domain.text import control_character
from slipway.errors import Conflict, InputError, NotAuthenticated, NotFound, PermissionDenied
from slipway.services.login_guard import LoginGuard
from slipway.services.ports import (
    IdentityStore,
    PasswordHasher,
    SessionRecord,
    TokenRecord,
    UnitOfWork,
)

__all__ = [
    "ANONYMOUS",
    "FIRST_ADMIN",
    "IdentityService",
    "NewToken",
    "WebSession",
    "access_of",
    "check_user_name",
    "enrol",
    "first_write_access",
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


# -- rights: what the other services ask --------------------------------------


def access_of(identity: IdentityStore, user: str) -> Access:
    """What ``user`` may do, as the store says now."""
    return Access(user, identity.groups_of(user), identity.is_admin(user), identity.editor_of(user))


def first_write_access(identity: IdentityStore, user: str) -> Access:
    """``user`` as their first write would make them: the first user of an
    empty store becomes its admin (see :func:`enrol`)."""
    if not identity.user_exists(user) and not identity.has_users():
        return Access(user, admin=True)
    return access_of(identity, user)


def enrol(identity: IdentityStore, user: str) -> None:
    """Make the acting ``user`` known before they write; the very first user
    of a store is its admin."""
    if not identity.user_exists(user):
        identity.ensure_user(user, admin=not identity.has_users())


# -- the service ----------------------------------------------------------------


@dataclass(frozen=True)
class WebSession:
    user: str
    cookie: str  # shown once, to the browser
    csrf: str


@dataclass(frozen=True)
class NewToken:
    record: TokenRecord
    token: str  # shown once


def _enrolled_admin(identity: IdentityStore, actor: str, action: str) -> None:
    """Enrol ``actor`` (the first user of a store is its admin), then refuse
    ``action`` unless they are an admin."""
    enrol(identity, actor)
    if not identity.is_admin(actor):
        raise PermissionDenied(f"only an admin can {action}; {actor} is not one")


class IdentityService:
    """Users, groups and credentials; each method names who acts (``actor``)
    where a right is needed, since one service serves every user of the API."""

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
        self._guard = LoginGuard(limits)
        self._dummy_hash: str | None = None

    # -- users and groups --------------------------------------------------------

    def whoami(self, user: str) -> tuple[bool, frozenset[str], frozenset[str]]:
        """(admin, groups, groups whose namespace they edit) of ``user``."""
        with self._uow() as uow:
            found = access_of(uow.identity, user)
            return found.admin, found.groups, found.editor_of

    def add_user(
        self, actor: str, name: str, *, admin: bool = False, groups: Sequence[str] = ()
    ) -> None:
        """Add the user ``name`` (admins only; the first user of a store is its admin)."""
        check_user_name(name)
        with self._uow() as uow:
            identity = uow.identity
            _enrolled_admin(identity, actor, "add users")
            if identity.user_exists(name):
                raise Conflict(f"user {name} already exists")
            if identity.group_exists(name):
                raise Conflict(f"{name} is a group: a user of that name would share its namespace")
            identity.ensure_user(name, admin=admin)
            for group in groups:
                identity.add_member(group, name)
            uow.commit()

    def add_group(
        self, actor: str, name: str, members: Sequence[str] = (), editors: Sequence[str] = ()
    ) -> None:
        """Add a group of ``members`` (admins only); ``editors`` are members
        who may also create modules in the group's namespace (``NAME/…``)."""
        if not name.strip() or (found := control_character(name)) is not None:
            problem = "is empty" if not name.strip() else f"holds the control character {found}"
            raise InputError(f"the group name {name!r} {problem}", field="name")
        with self._uow() as uow:
            identity = uow.identity
            _enrolled_admin(identity, actor, "add groups")
            if identity.user_exists(name):
                raise Conflict(f"{name} is a user: a group so named would share their namespace")
            identity.add_group(name)
            for member in members:
                identity.add_member(name, member)
            for editor in editors:
                identity.add_member(name, editor, editor=True)
            uow.commit()

    # -- passwords -------------------------------------------------------------

    def ensure_first_admin(self) -> str | None:
        """On a store where nobody has a password yet, give the admin user
        (made when missing) a random password and return it; else None."""
        with self._uow() as uow:
            if uow.identity.has_passwords():
                return None
            password = secrets.token_urlsafe(12)
            uow.identity.ensure_user(FIRST_ADMIN, admin=True)
            uow.identity.set_password_hash(FIRST_ADMIN, self._hasher.hash(password))
            uow.commit()
            return password

    def set_password(self, actor: str, user: str, password: str) -> None:
        """Set ``user``'s password: the user themself or an admin. Every
        dashboard session of ``user`` ends, and a lockout of theirs is lifted;
        their API tokens stay."""
        if len(password) < MIN_PASSWORD:
            raise InputError(
                f"a password needs at least {MIN_PASSWORD} characters", field="password"
            )
        with self._uow() as uow:
            identity = uow.identity
            if actor != user and not identity.is_admin(actor):
                raise PermissionDenied(f"only {user} or an admin can set {user}'s password")
            if not identity.user_exists(user):
                raise NotFound(f"user {user} does not exist")
            identity.set_password_hash(user, self._hasher.hash(password))
            # Whoever knew the old password is logged out; API tokens, made
            # on purpose and revocable one by one, stay.
            identity.end_sessions(user)
            self._guard.passed(identity, user)
            uow.commit()

    # -- dashboard sessions ----------------------------------------------------

    def login(self, user: str, password: str, address: str | None = None) -> WebSession:
        """A session for ``user`` if ``password`` is theirs, tried from the
        client ``address`` (None: not over the network). Raises
        ``TooManyAttempts`` while the account or the address must wait, and
        ``NotAuthenticated``, in the same words, for an unknown user and a
        wrong password."""
        try:
            with self._uow() as uow:
                self._guard.count(uow.identity, user, address, self._now())
                stored = uow.identity.password_hash(user)
                uow.commit()
            # Exactly one verification whether the user exists or not, so the
            # time taken does not tell which.
            matches = self._hasher.verify(stored or self._unknown_user_hash(), password)
            if stored is None or not matches:
                raise NotAuthenticated("wrong user name or password")
            session = WebSession(user, secrets.token_urlsafe(32), secrets.token_urlsafe(32))
            with self._uow() as uow:
                # The password may have changed while it was being checked:
                # a change ends every session, this one included.
                if uow.identity.password_hash(user) != stored:
                    raise NotAuthenticated("wrong user name or password")
                self._guard.passed(uow.identity, user)
                record = SessionRecord(user, session.csrf, self._now() + SESSION_LIFETIME)
                uow.identity.add_session(digest(session.cookie), record)
                uow.commit()
            return session
        finally:
            self._forget_expired()

    def _unknown_user_hash(self) -> str:
        """A hash of the same algorithm and cost as real ones, of no password."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(32))
        return self._dummy_hash

    def _forget_expired(self) -> None:
        """Forget tries and sessions that no longer matter, so neither table
        grows without bound. A transaction of its own, holding no log-in's
        row: it waits on no log-in in flight."""
        with self._uow() as uow:
            now = self._now()
            self._guard.forget_expired(uow.identity, now)
            uow.identity.expire_sessions(now)
            uow.commit()

    def session(self, cookie: str) -> SessionRecord | None:
        """The live session behind ``cookie``, or None (unknown or expired)."""
        with self._uow() as uow:
            record = uow.identity.session_of(digest(cookie))
        if record is None or record.expires_at <= self._now():
            return None
        return record

    def logout(self, cookie: str) -> None:
        with self._uow() as uow:
            uow.identity.delete_session(digest(cookie))
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
            enrol(uow.identity, user)
            number = uow.identity.add_token(user, name, digest(token), now)
            uow.commit()
        return NewToken(TokenRecord(number, user, name, now), token)

    def token_user(self, token: str) -> str | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self._uow() as uow:
            return uow.identity.token_user(digest(token))

    def tokens(self, user: str) -> list[TokenRecord]:
        with self._uow() as uow:
            return list(uow.identity.tokens_of(user))

    def revoke_token(self, user: str, token_id: int) -> None:
        with self._uow() as uow:
            if not uow.identity.delete_token(user, token_id):
                raise NotFound(f"{user} has no token {token_id}")
            uow.commit()
