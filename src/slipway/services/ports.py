"""The ports the services need: the catalog store and its unit of work.

Adapters implement them (``slipway.adapters.store`` with SQLAlchemy); the
in-memory implementation in ``slipway.services.memory`` backs most tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from slipway.domain.modules import Access, Kind, ModuleVersion, Rights
from slipway.errors import DefinitionError

__all__ = [
    "CatalogStore",
    "DefinitionFile",
    "Facets",
    "ListedModule",
    "ModuleQuery",
    "PasswordHasher",
    "SessionRecord",
    "TokenRecord",
    "UnitOfWork",
    "UserRecord",
]


@dataclass(frozen=True)
class Facets:
    """What a module is searched by, after inheritance: kept with the module
    so that lists filter and page in the store, not in Python."""

    description: str = ""
    os: str = ""  # the distribution, e.g. "debian"
    clouds: tuple[str, ...] = ()  # clouds it has a native image for
    parent: str | None = None  # the module it inherits from (name, no version)


@dataclass(frozen=True)
class ModuleQuery:
    """A filtered page of latest versions, by name. ``viewer`` limits it to
    what that user may view (None: everything); text matches name or
    description, case-insensitively."""

    kinds: tuple[Kind, ...] = (Kind.IMAGE, Kind.COMPONENT)
    text: str | None = None
    os: str | None = None
    cloud: str | None = None
    owner: str | None = None
    viewer: Access | None = None
    limit: int | None = 50
    offset: int = 0


@dataclass(frozen=True)
class ListedModule:
    version: ModuleVersion
    facets: Facets


@dataclass(frozen=True)
class TokenRecord:
    id: int
    user: str
    name: str
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    user: str
    csrf: str
    expires_at: datetime


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

    # -- search (facets are kept by the catalog service on every write) -------

    def set_facets(self, name: str, facets: Facets) -> None: ...

    def unindexed(self) -> Sequence[str]:
        """Names of modules whose facets were never computed."""

    def children(self, name: str) -> Sequence[str]:
        """Names of modules whose latest version inherits from ``name``."""

    def search(self, query: ModuleQuery) -> tuple[Sequence[ListedModule], int]:
        """One page of matching modules and the number of all matches."""

    # -- credentials: only hashes are stored ---------------------------------

    def set_password_hash(self, user: str, password_hash: str) -> None: ...

    def password_hash(self, user: str) -> str | None: ...

    def has_passwords(self) -> bool: ...

    def add_token(self, user: str, name: str, token_hash: str, created_at: datetime) -> int: ...

    def token_user(self, token_hash: str) -> str | None: ...

    def tokens_of(self, user: str) -> Sequence[TokenRecord]: ...

    def delete_token(self, user: str, token_id: int) -> bool: ...

    def add_session(self, token_hash: str, record: SessionRecord) -> None: ...

    def session_of(self, token_hash: str) -> SessionRecord | None: ...

    def delete_session(self, token_hash: str) -> None: ...


class PasswordHasher(Protocol):
    """A slow, salted password hash (the adapter picks the algorithm)."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...


class UnitOfWork(AbstractContextManager["UnitOfWork"], Protocol):
    """One transaction over the store: leaving the block without ``commit()``
    rolls back, so a failed action writes nothing."""

    @property
    def store(self) -> CatalogStore: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...
