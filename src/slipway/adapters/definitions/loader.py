"""Load a folder tree of YAML definitions into validated, normalised documents.

A module's name is its path relative to the root without the extension. Every
problem is a :class:`DefinitionError` naming file, line and key; all problems
of a tree are collected and raised together.
"""

from __future__ import annotations

import difflib
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from slipway.adapters.definitions.schema import MODELS, normalise
from slipway.adapters.definitions.yaml_source import (
    MAX_DEFINITION_BYTES,
    SourceDocument,
    parse_yaml,
)
from slipway.domain.modules import Kind, ModuleRef
from slipway.errors import DefinitionError, DefinitionErrors, InputError

__all__ = [
    "LoadedDefinition",
    "NotADefinition",
    "find_files",
    "load_file",
    "load_paths",
    "load_text",
    "read_definition",
]

SUFFIXES = (".yaml", ".yml")
OTHER_KINDS = {"recipe": "slipway image build"}
"""Kinds other commands read; a folder of definitions may hold them."""


class NotADefinition(DefinitionError):
    """A document of a kind another command reads (``kind: recipe``)."""

    def __init__(self, file: str, kind: str) -> None:
        super().__init__(
            f"a {kind} is not a definition",
            file=file,
            key="kind",
            hint=f"{kind}s are read by {OTHER_KINDS[kind]}",
        )


_KNOWN_KEYS: list[str] = []  # every key of every format, filled on first use


@dataclass(frozen=True)
class LoadedDefinition:
    """A validated definition read from a file."""

    name: str
    kind: Kind
    document: dict[str, Any]
    source: SourceDocument

    @property
    def file(self) -> str:
        return self.source.file

    def line_of(self, *path: str | int) -> int | None:
        return self.source.line_of(tuple(path))

    def error(self, message: str, *path: str | int, hint: str | None = None) -> DefinitionError:
        key = ".".join(str(p) for p in path) or None
        return DefinitionError(
            message, file=self.file, line=self.line_of(*path), key=key, hint=hint
        )


def find_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Every definition file under ``paths`` (files are taken as they are), sorted."""
    for path in paths:
        if path.is_dir():
            found: list[Path] = []
            for folder, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(folder) / f for f in files if f.endswith(SUFFIXES))
            yield from sorted(found)
        elif path.exists():
            yield path  # a FIFO or a device is refused by load_file, naming it
        else:
            raise InputError(f"{path}: no such file or folder")


def module_name(path: Path, root: Path) -> str:
    """``root/examples/images/x.yaml`` → ``examples/images/x``."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        raise InputError(
            f"{path} is outside {root}, so it has no module name",
            hint="run from the folder that holds the definitions, or pass --root",
        ) from None
    name = relative.with_suffix("").as_posix()
    try:
        ModuleRef.parse(name)
    except ValueError as exc:
        raise InputError(f"{path}: {exc}") from None
    return name


def load_paths(paths: Iterable[Path], root: Path) -> list[LoadedDefinition]:
    """Load every definition under ``paths``; raise all problems together."""
    loaded: list[LoadedDefinition] = []
    errors: list[DefinitionError] = []
    seen: dict[str, str] = {}
    explicit = {path.resolve() for path in paths if path.is_file()}
    for file in find_files(paths):
        try:
            _regular_file(file)  # before its name: a link to a device resolves elsewhere
        except DefinitionError as exc:
            errors.append(exc)
            continue
        name = module_name(file, root)
        if name in seen:
            if seen[name] == str(file):
                continue
            errors.append(
                DefinitionError(f"module {name} is also defined by {seen[name]}", file=str(file))
            )
            continue
        seen[name] = str(file)
        try:
            loaded.append(load_file(file, name))
        except NotADefinition as exc:
            if file.resolve() in explicit:  # named on purpose: say what it is
                errors.append(exc)
        except DefinitionErrors as exc:
            errors.extend(exc.errors)
        except DefinitionError as exc:
            errors.append(exc)
    DefinitionErrors.raise_if_any(errors)
    return loaded


def load_file(file: Path, name: str) -> LoadedDefinition:
    try:
        text = read_definition(file).decode("utf-8")
    except UnicodeDecodeError:
        raise DefinitionError("not a UTF-8 text file", file=str(file)) from None
    return load_text(text, str(file), name)


_SPECIAL = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a folder"),
)


def read_definition(file: Path) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_DEFINITION_BYTES`.

    Anything else is refused before it is opened: reading a FIFO waits for a
    writer forever and a device may never end. The file is opened without
    blocking and checked again, in case it was swapped for one meanwhile."""
    _regular_file(file)
    try:
        fd = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as handle:
            _check_regular(file, os.fstat(handle.fileno()))
            data = handle.read(MAX_DEFINITION_BYTES + 1)
    except OSError as exc:
        raise DefinitionError(f"cannot read: {exc.strerror}", file=str(file)) from exc
    if len(data) > MAX_DEFINITION_BYTES:
        raise _too_big(file)
    return data


def _regular_file(file: Path) -> None:
    try:
        info = file.stat()
    except OSError as exc:
        raise DefinitionError(f"cannot read: {exc.strerror}", file=str(file)) from exc
    _check_regular(file, info)


def _check_regular(file: Path, info: os.stat_result) -> None:
    if not stat.S_ISREG(info.st_mode):
        what = next((name for test, name in _SPECIAL if test(info.st_mode)), "a special file")
        raise DefinitionError(
            f"{what}, not a regular file: definitions are read from regular files only",
            file=str(file),
        )
    if info.st_size > MAX_DEFINITION_BYTES:
        raise _too_big(file)


def _too_big(file: Path) -> DefinitionError:
    return DefinitionError(
        f"larger than {MAX_DEFINITION_BYTES // 2**20} MiB, the most a definition may be",
        file=str(file),
    )


def load_text(text: str, file: str, name: str) -> LoadedDefinition:
    """Parse and validate one document; ``name`` is its module name."""
    source = parse_yaml(text, file)
    data = source.data
    if not isinstance(data, dict):
        raise DefinitionError(
            "a definition must be a mapping of keys to values", file=file, line=source.line_of(())
        )
    kind = data.get("kind")
    if kind in OTHER_KINDS:
        raise NotADefinition(file, kind)
    if kind not in MODELS:
        known = ", ".join(MODELS)
        where = source.line_of(("kind",))
        if kind is None:
            raise DefinitionError(
                f"the key 'kind' is missing (one of: {known})", file=file, line=where, key="kind"
            )
        raise DefinitionError(
            f"unknown kind {kind!r} (one of: {known})", file=file, line=where, key="kind"
        )
    if kind in ("cloud", "security-group") and "name" not in data:
        data = {**data, "name": Path(file).stem}
    model_type = MODELS[kind]
    try:
        model = model_type.model_validate(data)
    except ValidationError as exc:
        DefinitionErrors.raise_if_any(_translate(exc, source, data))
        raise  # pragma: no cover - raise_if_any always raises for a failed validation
    return LoadedDefinition(name, Kind(kind), normalise(model), source)


_MESSAGES = {
    "int_type": "expected a whole number",
    "float_type": "expected a number",
    "finite_number": "expected a finite number",
    "string_type": "expected text (put it in quotes)",
    "bool_type": "expected true or false",
    "dict_type": "expected a mapping of keys to values",
    "model_type": "expected a mapping of keys to values",
    "list_type": "expected a list",
    "missing": "this key is required",
    "extra_forbidden": "unknown key",
}


def _real_path(loc: tuple[str | int, ...], data: Any) -> tuple[str | int, ...]:
    """Drop pydantic's union-member tags from ``loc``, keeping document keys."""
    path: list[str | int] = []
    current: Any = data
    for part in loc:
        found, child = _step(current, part)
        if found:
            current = child
            path.append(part)
        elif isinstance(current, dict) and not (isinstance(part, str) and _is_tag(part)):
            path.append(part)  # a missing or unknown key: still a document key
            current = None
    return tuple(path)


def _step(current: Any, part: str | int) -> tuple[bool, Any]:
    """(True, the value at ``part``) when ``current`` has it, else (False, None)."""
    if isinstance(current, dict) and part in current:
        return True, current[part]
    if isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
        return True, current[part]
    return False, None


def _is_tag(part: str) -> bool:
    return (
        part[:1].isupper()
        or part.startswith(("literal[", "constrained-", "function-"))
        or part in {"int", "float", "str", "bool", "none", "list", "dict"}
        or "[" in part
    )


def _translate(exc: ValidationError, source: SourceDocument, data: Any) -> list[DefinitionError]:
    best: dict[tuple[str | int, ...], ErrorDetails] = {}
    for error in exc.errors():
        path = _real_path(error["loc"], data)
        if any(len(other) > len(path) and other[: len(path)] == path for other in best):
            continue  # a deeper error on the same value says more
        for other in [o for o in best if len(o) < len(path) and path[: len(o)] == o]:
            del best[other]
        if path not in best or best[path]["type"] == "literal_error":
            best[path] = error
    found = [_to_definition_error(path, error, source) for path, error in best.items()]
    return sorted(found, key=lambda e: e.location.line or 0)


def _to_definition_error(
    path: tuple[str | int, ...], error: ErrorDetails, source: SourceDocument
) -> DefinitionError:
    kind = error["type"]
    message = _MESSAGES.get(kind, error["msg"].removeprefix("Value error, "))
    message = message[:1].lower() + message[1:]
    if kind == "extra_forbidden" and path:
        close = difflib.get_close_matches(str(path[-1]), _known_keys(), n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    elif (
        kind not in ("missing", "extra_forbidden")
        and "input" in error
        and not isinstance(error["input"], dict | list)
    ):
        message += f", got {error['input']!r}"
    return DefinitionError(
        message,
        file=source.file,
        line=source.line_of(path),
        key=".".join(str(p) for p in path) or None,
    )


def _known_keys() -> list[str]:
    if not _KNOWN_KEYS:
        keys: set[str] = set()
        pending = list(MODELS.values())
        while pending:
            model = pending.pop()
            for name, field in model.model_fields.items():
                keys.add(name)
                pending.extend(_nested_models(field.annotation))
        _KNOWN_KEYS.extend(sorted(keys))
    return _KNOWN_KEYS


def _nested_models(annotation: Any) -> list[Any]:
    from pydantic import BaseModel

    found = []
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            found.append(arg)
        else:
            found.extend(_nested_models(arg))
    return found
