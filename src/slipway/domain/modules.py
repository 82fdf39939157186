"""Modules: named, versioned definitions, and who may do what with them.

A module's name is its path without the extension
(``examples/images/ubuntu-22.04``); a reference may pin a version
(``examples/images/ubuntu-22.04@7``) or follow the latest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "INHERITED",
    "MAX_NAME_CHARS",
    "MAX_VERSION",
    "Access",
    "Kind",
    "ModuleRef",
    "ModuleVersion",
    "Right",
    "Rights",
    "namespace_of",
    "parse_rights",
]

INHERITED = "inherited"
"""The literal that takes the parent's value explicitly."""

MAX_NAME_CHARS = 400
"""Characters of a module name, as the store keeps them."""
MAX_VERSION = 2**31 - 1
"""The highest version number the store can hold; no module gets near it."""

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*(/[A-Za-z0-9_][A-Za-z0-9_.\-]*)*$")


class Kind(StrEnum):
    IMAGE = "image"
    COMPONENT = "component"
    CLOUD = "cloud"
    SECURITY_GROUP = "security-group"
    CATALOG = "catalog"


class Right(StrEnum):
    VIEW = "view"
    EDIT = "edit"
    DEPLOY = "deploy"


def parse_rights(text: str) -> frozenset[Right]:
    """``"view,deploy"`` → {VIEW, DEPLOY}; ``""`` or ``"none"`` → empty.
    Raises ``ValueError`` naming an unknown right."""
    rights: set[Right] = set()
    for part in text.replace(" ", "").split(","):
        if part in ("", "none"):
            continue
        try:
            rights.add(Right(part))
        except ValueError:
            known = ", ".join(r.value for r in Right)
            raise ValueError(f"unknown right {part!r} (known: {known})") from None
    return frozenset(rights)


@dataclass(frozen=True)
class ModuleRef:
    """A reference to a module, following the latest version unless pinned."""

    name: str
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModuleRef:
        """Parse ``name`` or ``name@N``; a trailing ``.yaml``/``.yml`` is dropped.
        Raises ``ValueError`` with the reason."""
        name, sep, version = text.strip().partition("@")
        for suffix in (".yaml", ".yml"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
        name = name.strip("/")
        if not _NAME.match(name) or ".." in name.split("/"):
            raise ValueError(f"{text!r} is not a module name (letters, digits, . _ - and /)")
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"a module name has at most {MAX_NAME_CHARS} characters")
        if not sep:
            return cls(name)
        # Checked as text first: a number too big for the store is no version,
        # and one of thousands of digits is costly to convert.
        if not (version.isascii() and version.isdigit() and len(version) <= 10) or not (
            1 <= int(version) <= MAX_VERSION
        ):
            raise ValueError(
                f"{text!r}: the version after @ must be a number from 1 to {MAX_VERSION}"
            )
        return cls(name, int(version))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


def namespace_of(name: str) -> str | None:
    """The namespace a module name lives in: its first path segment
    (``alice`` for ``alice/images/web``); None for a name without a ``/``."""
    namespace, slash, _ = name.partition("/")
    return namespace if slash else None


@dataclass(frozen=True)
class Rights:
    """Owner, group and public, each with view, edit or deploy; the owner has every right."""

    owner: str
    group: str | None = None
    group_rights: frozenset[Right] = frozenset()
    public_rights: frozenset[Right] = frozenset()


@dataclass(frozen=True)
class Access:
    """Who is acting: a user, the groups they are in, the groups whose
    namespace they edit, and whether they are an admin."""

    user: str
    groups: frozenset[str] = frozenset()
    admin: bool = False
    editor_of: frozenset[str] = frozenset()

    def may_create(self, name: str) -> bool:
        """Whether the user may create a module called ``name``: in their own
        namespace (``USER/…``), in that of a group they are an editor of
        (``GROUP/…``), or anywhere when they are an admin."""
        if self.admin:
            return True
        namespace = namespace_of(name)
        return namespace is not None and (namespace == self.user or namespace in self.editor_of)

    def rights_on(self, rights: Rights) -> frozenset[Right]:
        if self.admin or self.user == rights.owner:
            return frozenset(Right)
        granted = set(rights.public_rights)
        if rights.group is not None and rights.group in self.groups:
            granted |= rights.group_rights
        # Editing or deploying something you cannot see makes no sense.
        if granted:
            granted.add(Right.VIEW)
        return frozenset(granted)

    def can(self, right: Right, rights: Rights) -> bool:
        return right in self.rights_on(rights)


@dataclass(frozen=True)
class ModuleVersion:
    """One immutable saved version of a module."""

    name: str
    kind: Kind
    version: int
    document: dict[str, Any]
    rights: Rights
    author: str
    created_at: datetime
    source: str = ""
    copied_from: str | None = None
    comment: str = ""
    content_hash: str = field(default="", compare=False)

    @property
    def ref(self) -> ModuleRef:
        return ModuleRef(self.name, self.version)

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"
