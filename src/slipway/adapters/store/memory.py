"""The catalog store in memory, and a unit of work over the in-memory stores:
the same contracts as the SQL ones, for tests and for validating definitions
without a database."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from types import TracebackType
from typing import Self

from slipway.adapters.store.identity_memory import MemoryIdentityStore
from slipway.adapters.store.runs_memory import MemoryRunStore
from slipway.domain.modules import Kind, ModuleVersion, Right, Rights
from slipway.errors import Conflict, NotFound
from slipway.services.ports import Facets, ListedModule, ModuleQuery

__all__ = ["MemoryStore", "MemoryUnitOfWork"]


class MemoryStore:
    def __init__(self) -> None:
        self.modules: dict[str, list[ModuleVersion]] = {}
        self.rights: dict[str, Rights] = {}
        self.facets: dict[str, Facets | None] = {}

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


class MemoryUnitOfWork:
    """Commits by keeping the working copies; rolls back by restoring snapshots.
    Pass the same stores to every unit of work that should share data."""

    def __init__(
        self,
        store: MemoryStore | None = None,
        runs: MemoryRunStore | None = None,
        identity: MemoryIdentityStore | None = None,
    ) -> None:
        self.committed = store if store is not None else MemoryStore()
        self.committed_runs = runs if runs is not None else MemoryRunStore()
        self.committed_identity = identity if identity is not None else MemoryIdentityStore()
        self.store = self.committed
        self.runs = self.committed_runs
        self.identity = self.committed_identity

    def __enter__(self) -> Self:
        self.rollback()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.store = self.committed
        self.runs = self.committed_runs
        self.identity = self.committed_identity

    def commit(self) -> None:
        self.committed.__dict__.update(copy.deepcopy(self.store.__dict__))
        self.committed_runs.__dict__.update(copy.deepcopy(self.runs.__dict__))
        self.committed_identity.__dict__.update(copy.deepcopy(self.identity.__dict__))

    def rollback(self) -> None:
        self.store = copy.deepcopy(self.committed)
        self.runs = copy.deepcopy(self.committed_runs)
        self.identity = copy.deepcopy(self.committed_identity)
