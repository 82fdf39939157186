"""Folders and files only Slipway's own user may read.

The data folder and the databases hold password and token hashes, sealed
run keys and every user's definitions, so Slipway creates them readable by
its user only: folders 0700, database files 0600 (SQLite gives its journal
and WAL files the mode of the database). A folder or file that exists
already keeps the mode its owner gave it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["private_file", "private_folder"]


def private_folder(path: Path) -> Path:
    """``path`` as a folder, created 0700 when missing (missing parents with
    the usual mode)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file, created empty and 0600 when missing, in a private
    folder when that is missing too."""
    private_folder(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return path
