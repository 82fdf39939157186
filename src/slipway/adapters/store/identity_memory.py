"""Users, groups and credentials in memory: the same contract as the SQL
identity store, for tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slipway.domain.lockouts import Attempts
from slipway.errors import Conflict, NotFound
from slipway.services.ports import SessionRecord, TokenRecord

__all__ = ["MemoryIdentityStore"]


class MemoryIdentityStore:
    def __init__(self) -> None:
        self.users: dict[str, bool] = {}
        self.groups: dict[str, set[str]] = {}
        self.editors: dict[str, set[str]] = {}  # group -> members who edit its namespace
        self.passwords: dict[str, str] = {}
        self.tokens: dict[str, TokenRecord] = {}  # by token hash
        self.sessions: dict[str, SessionRecord] = {}  # by cookie hash
        self.attempts: dict[str, tuple[Attempts, datetime]] = {}  # by subject: kept until

    def ensure_user(self, name: str, *, admin: bool = False) -> None:
        self.users[name] = self.users.get(name, False) or admin

    def user_exists(self, name: str) -> bool:
        return name in self.users

    def has_users(self) -> bool:
        return bool(self.users)

    def is_admin(self, name: str) -> bool:
        return self.users.get(name, False)

    def add_group(self, name: str) -> None:
        if name in self.groups:
            raise Conflict(f"group {name} already exists")
        self.groups[name] = set()

    def group_exists(self, name: str) -> bool:
        return name in self.groups

    def add_member(self, group: str, user: str, *, editor: bool = False) -> None:
        if group not in self.groups:
            raise NotFound(f"group {group} does not exist")
        if user not in self.users:
            raise NotFound(f"user {user} does not exist")
        self.groups[group].add(user)
        if editor:
            self.editors.setdefault(group, set()).add(user)

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(g for g, members in self.groups.items() if user in members)

    def editor_of(self, user: str) -> frozenset[str]:
        return frozenset(g for g, editors in self.editors.items() if user in editors)

    # -- credentials ----------------------------------------------------------

    def _require_user(self, name: str) -> None:
        if name not in self.users:
            raise NotFound(f"user {name} does not exist")

    def set_password_hash(self, user: str, password_hash: str) -> None:
        self._require_user(user)
        self.passwords[user] = password_hash

    def password_hash(self, user: str) -> str | None:
        return self.passwords.get(user)

    def has_passwords(self) -> bool:
        return bool(self.passwords)

    def add_token(self, user: str, name: str, token_hash: str, created_at: datetime) -> int:
        self._require_user(user)
        number = max((t.id for t in self.tokens.values()), default=0) + 1
        self.tokens[token_hash] = TokenRecord(number, user, name, created_at)
        return number

    def token_user(self, token_hash: str) -> str | None:
        found = self.tokens.get(token_hash)
        return found.user if found else None

    def tokens_of(self, user: str) -> Sequence[TokenRecord]:
        return sorted((t for t in self.tokens.values() if t.user == user), key=lambda t: t.id)

    def delete_token(self, user: str, token_id: int) -> bool:
        for key, token in list(self.tokens.items()):
            if token.id == token_id and token.user == user:
                del self.tokens[key]
                return True
        return False

    def add_session(self, token_hash: str, record: SessionRecord) -> None:
        self._require_user(record.user)
        self.sessions[token_hash] = record

    def session_of(self, token_hash: str) -> SessionRecord | None:
        return self.sessions.get(token_hash)

    def delete_session(self, token_hash: str) -> None:
        self.sessions.pop(token_hash, None)

    def end_sessions(self, user: str) -> None:
        self.sessions = {k: r for k, r in self.sessions.items() if r.user != user}

    def expire_sessions(self, now: datetime) -> None:
        self.sessions = {k: r for k, r in self.sessions.items() if r.expires_at >= now}

    # -- log-in attempts (a unit of work is one thread's: nothing to lock) ------

    def attempts_for_update(self, subject: str) -> Attempts | None:
        found = self.attempts.get(subject)
        return found[0] if found else None

    def save_attempts(self, subject: str, attempts: Attempts, expires_at: datetime) -> None:
        self.attempts[subject] = (attempts, expires_at)

    def clear_attempts(self, subject: str) -> None:
        self.attempts.pop(subject, None)

    def expire_attempts(self, now: datetime) -> None:
        self.attempts = {k: kept for k, kept in self.attempts.items() if kept[1] >= now}
