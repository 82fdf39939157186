"""Inheritance: an image over its parent images, a component over its image.

The rules (DESIGN.md §3):

- a child's value overrides the parent's, key by key;
- the literal ``inherited`` takes the parent's value explicitly;
- native images are inherited per cloud unless the child names its own;
- ``size`` and ``os`` merge per key; per-cloud configuration (``clouds``)
  merges per cloud, then per key;
- every other key (lists included) is replaced whole.

:func:`resolve_chain` returns the effective document and, for every value, the
module version it came from — what ``slipway show --resolved`` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slipway.domain.modules import INHERITED

__all__ = [
    "STRUCTURAL_KEYS",
    "ChainLink",
    "InheritanceCycle",
    "InheritedWithoutParent",
    "MissingParent",
    "Resolved",
    "build_chain",
    "resolve_chain",
]

MERGE_PER_KEY = frozenset({"size", "os"})
MERGE_PER_CLOUD = frozenset({"native"})
MERGE_PER_CLOUD_AND_KEY = frozenset({"clouds"})
STRUCTURAL_KEYS = frozenset({"kind", "parent", "image"})
"""Keys that say where a module sits in the hierarchy: never inherited."""


@dataclass(frozen=True)
class ChainLink:
    """One module in a hierarchy: ``label`` is ``name@version``, ``source`` its file."""

    label: str
    document: Mapping[str, Any]
    source: str = ""

    @property
    def up(self) -> str | None:
        """The reference to the next module up: a parent image or a component's image."""
        value = self.document.get("parent") or self.document.get("image")
        return value if isinstance(value, str) else None


class MissingParent(Exception):
    def __init__(self, link: ChainLink, reference: str) -> None:
        self.link = link
        self.reference = reference
        key = "parent" if link.document.get("parent") else "image"
        self.key = key
        super().__init__(f"{link.label} names {key} {reference!r}, which does not exist")


class InheritanceCycle(Exception):
    def __init__(self, links: Sequence[ChainLink]) -> None:
        self.links = tuple(links)
        path = " → ".join(
            f"{link.label} ({link.source})" if link.source else link.label for link in links
        )
        super().__init__(f"inheritance cycle: {path}")


class InheritedWithoutParent(Exception):
    def __init__(self, link: ChainLink, key: str) -> None:
        self.link = link
        self.key = key
        super().__init__(f"{link.label}: {key} is 'inherited' but the module has no parent")


@dataclass(frozen=True)
class Resolved:
    """The effective document; ``origin`` maps a dotted key path to the
    ``name@version`` that supplied it; ``chain`` lists the hierarchy, root first."""

    document: dict[str, Any]
    origin: dict[str, str]
    chain: tuple[ChainLink, ...]


def build_chain(start: ChainLink, lookup: Callable[[str], ChainLink | None]) -> list[ChainLink]:
    """Follow parent / image references from ``start`` up to the root.

    ``lookup`` turns a reference into a link, or ``None`` when it does not
    exist. Returns the chain root first. Raises :class:`MissingParent` or
    :class:`InheritanceCycle`.
    """
    chain = [start]
    seen = {_base(start.label)}
    current = start
    while (reference := current.up) is not None:
        parent = lookup(reference)
        if parent is None:
            raise MissingParent(current, reference)
        if _base(parent.label) in seen:
            loop_start = next(
                i for i, ln in enumerate(chain) if _base(ln.label) == _base(parent.label)
            )
            raise InheritanceCycle([*chain[loop_start:], parent])
        seen.add(_base(parent.label))
        chain.append(parent)
        current = parent
    chain.reverse()
    return chain


def _base(label: str) -> str:
    return label.partition("@")[0]


def resolve_chain(chain: Sequence[ChainLink]) -> Resolved:
    """Merge ``chain`` (root first) into the effective document with origins."""
    document: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for index, link in enumerate(chain):
        has_parent = index > 0
        for key, value in link.document.items():
            if key in STRUCTURAL_KEYS:
                continue
            if value == INHERITED:
                _require_parent(has_parent, link, key)
                continue
            if key in MERGE_PER_KEY or key in MERGE_PER_CLOUD:
                _merge_flat(document, origin, link, key, value, has_parent)
            elif key in MERGE_PER_CLOUD_AND_KEY:
                _merge_nested(document, origin, link, key, value, has_parent)
            else:
                _drop_origins(origin, key)
                document[key] = value
                origin[key] = link.label
    return Resolved(document, origin, tuple(chain))


def _require_parent(has_parent: bool, link: ChainLink, key: str) -> None:
    if not has_parent:
        raise InheritedWithoutParent(link, key)


def _drop_origins(origin: dict[str, str], key: str) -> None:
    for path in [p for p in origin if p == key or p.startswith(key + ".")]:
        del origin[path]


def _merge_keys(
    target: dict[str, Any],
    origin: dict[str, str],
    link: ChainLink,
    path: str,
    value: Mapping[str, Any],
    has_parent: bool,
) -> None:
    """Overlay ``value`` on ``target`` key by key, skipping ``inherited``."""
    for sub, sub_value in value.items():
        if sub_value == INHERITED:
            _require_parent(has_parent, link, f"{path}.{sub}")
            continue
        target[sub] = sub_value
        origin[f"{path}.{sub}"] = link.label


def _merge_flat(
    document: dict[str, Any],
    origin: dict[str, str],
    link: ChainLink,
    key: str,
    value: Mapping[str, Any],
    has_parent: bool,
) -> None:
    target = dict(document.get(key) or {})
    _merge_keys(target, origin, link, key, value, has_parent)
    document[key] = target


def _merge_nested(
    document: dict[str, Any],
    origin: dict[str, str],
    link: ChainLink,
    key: str,
    value: Mapping[str, Any],
    has_parent: bool,
) -> None:
    target = {cloud: dict(conf) for cloud, conf in (document.get(key) or {}).items()}
    for cloud, conf in value.items():
        if conf == INHERITED:
            _require_parent(has_parent, link, f"{key}.{cloud}")
            continue
        _merge_keys(target.setdefault(cloud, {}), origin, link, f"{key}.{cloud}", conf, has_parent)
    document[key] = target
