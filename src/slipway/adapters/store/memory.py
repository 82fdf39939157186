"""The catalog store in memory: the same contract as the SQL store, for tests
and for validating definitions without a database."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self

from slipway.adapters.store.runs_memory import MemoryRunStore
from slipway.domain.modules import Kind, ModuleVersion, Rights
from slipway.errors import Conflict, NotFound

__all__ = ["MemoryStore", "MemoryUnitOfWork"]


class MemoryStore:
    def __init__(self) -> None:
        self.modules: dict[str, list[ModuleVersion]] = {}
        self.rights: dict[str, Rights] = {}
        self.users: dict[str, bool] = {}
        self.groups: dict[str, set[str]] = {}

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

    def add_member(self, group: str, user: str) -> None:
        if group not in self.groups:
            raise NotFound(f"group {group} does not exist")
        if user not in self.users:
            raise NotFound(f"user {user} does not exist")
        self.groups[group].add(user)

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(g for g, members in self.groups.items() if user in members)


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
