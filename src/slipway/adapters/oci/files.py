"""Which artifact titles may become file names.

A layer's ``org.opencontainers.image.title`` is chosen by whoever pushed it,
so on pull it is a file name only when it cannot leave the target folder or
hide in it: one path component, no leading dot, nothing invisible.
"""

from __future__ import annotations

import unicodedata

__all__ = ["MAX_NAME_BYTES", "is_plain_file_name", "name_for_digest"]

MAX_NAME_BYTES = 255
# Control, format (bidirectional overrides …), surrogate and line/paragraph
# separator characters: none belongs in a file name a person reads.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def is_plain_file_name(name: str) -> bool:
    """Whether ``name`` is one plain file name: not empty, at most 255 bytes,
    no ``/`` or ``\\``, not starting with a dot (so neither ``.`` nor ``..``
    nor a hidden file), no control or invisible formatting characters."""
    if not name or name.startswith(".") or "/" in name or "\\" in name:
        return False
    try:
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            return False
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(char) in _HIDDEN_CATEGORIES for char in name)


def name_for_digest(digest: str) -> str:
    """The file name of a layer that has no title: ``sha256-<hex>``."""
    return digest.replace(":", "-", 1)
