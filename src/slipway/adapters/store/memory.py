"""The catalog store in memory: the same contract as the SQL store, for tests
and for validating definitions without a database."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from types import TracebackType
from typing import Self

from slipway.adapters.store.runs_memory import MemoryRunStore
from slipway.domain.lockouts import Attempts
from slipway.domain.modules import Kind, ModuleVersion, Right, Rights
from slipway.errors import Conflict, NotFound
from slipway.services.ports import (
    Facets,
    ListedModule,
    ModuleQuery,
    SessionRecord,
    TokenRecord,
)

__all__ = ["MemoryStore", "MemoryUnitOfWork"]


class MemoryStore:
    def __init__(self) -> None:
        self.modules: dict[str, list[ModuleVersion]] = {}
        self.rights: dict[str, Rights] = {}
        self.users: dict[str, bool] = {}
        self.groups: dict[str, set[str]] = {}
        self.editors: dict[str, set[str]] = {}  # group -> members who edit its namespace
        self.facets: dict[str, Facets | None] = {}
        self.passwords: dict[str, str] = {}
        self.tokens: dict[str, TokenRecord] = {}  # by token hash
        self.sessions: dict[str, SessionRecord] = {}  # by cookie hash
        self.attempts: dict[str, tuple[Attempts, datetime]] = {}  # by subject: kept until

    def _with_rights(self, version: ModuleVersion) -> ModuleVersion:
        return replace(version, rights=self.rights[version.name])

    def latest(self, name: str) -> ModuleVersion | None:
        versions = self.modules.get(name)
        return self._with_rights(versions[-1]) if versions else None

    def get(self, name: str, version: int) -> ModuleVersion | None:
        versions = self.modules.get(name, [])
        if 1 <= version <= len(versions):
            return self._with_rights(versions[version - 1])
        return None

    def versions(self, name: str) -> Sequence[ModuleVersion]:
        return [self._with_rights(v) for v in self.modules.get(name, [])]

    def list_latest(self, kind: Kind | None = None) -> Sequence[ModuleVersion]:
        found = [self._with_rights(v[-1]) for _, v in sorted(self.modules.items())]
        return [v for v in found if kind is None or v.kind is kind]

    def add_version(self, version: ModuleVersion) -> None:
        versions = self.modules.setdefault(version.name, [])
        if version.version != len(versions) + 1:
            raise Conflict(f"{version.name}: version {version.version} is not the next one")
        if versions and versions[0].kind is not version.kind:
            raise Conflict(f"{version.name} is a {versions[0].kind}, not a {version.kind}")
        versions.append(copy.deepcopy(version))
        self.rights.setdefault(version.name, version.rights)
        self.facets.setdefault(version.name, None)

    def set_rights(self, name: str, rights: Rights) -> None:
        if name not in self.modules:
            raise NotFound(f"module {name} does not exist")
        self.rights[name] = rights

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

    # -- search ---------------------------------------------------------------

    def set_facets(self, name: str, facets: Facets) -> None:
        if name not in self.modules:
            raise NotFound(f"module {name} does not exist")
        self.facets[name] = facets

    def unindexed(self) -> Sequence[str]:
        return sorted(name for name, facets in self.facets.items() if facets is None)

    def children(self, name: str) -> Sequence[str]:
        return sorted(n for n, f in self.facets.items() if f is not None and f.parent == name)

    def _matches(self, query: ModuleQuery, version: ModuleVersion, facets: Facets) -> bool:
        text = (query.text or "").lower()
        viewer = query.viewer
        return (
            version.kind in query.kinds
            and (text in version.name.lower() or text in facets.description.lower())
            and (not query.os or facets.os == query.os)
            and (not query.cloud or query.cloud in facets.clouds)
            and (not query.owner or version.rights.owner == query.owner)
            and (viewer is None or viewer.can(Right.VIEW, version.rights))
        )

    def search(self, query: ModuleQuery) -> tuple[Sequence[ListedModule], int]:
        found = [
            ListedModule(version, self.facets.get(name) or Facets())
            for name in sorted(self.modules)
            for version in [self._with_rights(self.modules[name][-1])]
            if self._matches(query, version, self.facets.get(name) or Facets())
        ]
        end = None if query.limit is None else query.offset + query.limit
        return found[query.offset : end], len(found)

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


class MemoryUnitOfWork:
    """Commits by keeping the working copy; rolls back by restoring a snapshot.
    Pass the same stores to every unit of work that should share data."""

    def __init__(
        self, store: MemoryStore | None = None, runs: MemoryRunStore | None = None
    ) -> None:
        self.committed = store or MemoryStore()
        self.committed_runs = runs if runs is not None else MemoryRunStore()
        self.store = self.committed
        self.runs = self.committed_runs

    def __enter__(self) -> Self:
        self.store = copy.deepcopy(self.committed)
        self.runs = copy.deepcopy(self.committed_runs)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.store = self.committed
        self.runs = self.committed_runs

    def commit(self) -> None:
        self.committed.__dict__.update(copy.deepcopy(self.store.__dict__))
        self.committed_runs.__dict__.update(copy.deepcopy(self.runs.__dict__))

    def rollback(self) -> None:
        self.store = copy.deepcopy(self.committed)
        self.runs = copy.deepcopy(self.committed_runs)
