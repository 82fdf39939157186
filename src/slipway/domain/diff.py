"""Differences between two versions of a document, key path by key path."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Change", "diff_documents", "flatten"]

_MISSING = object()


@dataclass(frozen=True)
class Change:
    """``old`` or ``new`` is ``None`` when the key was added or removed."""

    path: str
    old: Any
    new: Any

    @property
    def action(self) -> str:
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"


def flatten(document: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"size": {"cpu": 2}}`` → ``{"size.cpu": 2}``; lists stay whole values."""
    flat: dict[str, Any] = {}
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, path + "."))
        else:
            flat[path] = value
    return flat


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every key path whose value differs, sorted by path."""
    before, after = flatten(old), flatten(new)
    changes = []
    for path in sorted(before.keys() | after.keys()):
        a, b = before.get(path, _MISSING), after.get(path, _MISSING)
        if a != b:
            changes.append(Change(path, None if a is _MISSING else a, None if b is _MISSING else b))
    return changes
