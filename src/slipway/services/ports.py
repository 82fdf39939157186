"""The ports the services need: the catalog store and its unit of work.

Adapters implement them (``slipway.adapters.store`` with SQLAlchemy); the
in-memory implementation in ``slipway.services.memory`` backs most tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from slipway.domain.modules import Kind, ModuleVersion, Rights
from slipway.errors import DefinitionError

__all__ = ["CatalogStore", "DefinitionFile", "UnitOfWork", "UserRecord"]


class DefinitionFile(Protocol):
    """A validated definition read from a file (the definitions adapter makes them)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> Kind: ...

    @property
    def document(self) -> dict[str, Any]: ...

    @property
    def file(self) -> str: ...

    def error(self, message: str, *path: str | int, hint: str | None = None) -> DefinitionError:
        """An error pointing at ``path`` (keys and indexes) in the file."""


class UserRecord(Protocol):
    name: str
    admin: bool


class CatalogStore(Protocol):
    """Modules with immutable versions, users and groups."""

    def latest(self, name: str) -> ModuleVersion | None: ...

    def get(self, name: str, version: int) -> ModuleVersion | None: ...

    def versions(self, name: str) -> Sequence[ModuleVersion]: ...

    def list_latest(self, kind: Kind | None = None) -> Sequence[ModuleVersion]: ...

    def add_version(self, version: ModuleVersion) -> None:
        """Save ``version``; its number must be one more than the latest (or 1)."""

    def set_rights(self, name: str, rights: Rights) -> None: ...

    def ensure_user(self, name: str, *, admin: bool = False) -> None: ...

    def user_exists(self, name: str) -> bool: ...

    def has_users(self) -> bool: ...

    def is_admin(self, name: str) -> bool: ...

    def add_group(self, name: str) -> None: ...

    def group_exists(self, name: str) -> bool: ...

    def add_member(self, group: str, user: str) -> None: ...

    def groups_of(self, user: str) -> frozenset[str]: ...


class UnitOfWork(AbstractContextManager["UnitOfWork"], Protocol):
    """One transaction over the store: leaving the block without ``commit()``
    rolls back, so a failed action writes nothing."""

    @property
    def store(self) -> CatalogStore: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
