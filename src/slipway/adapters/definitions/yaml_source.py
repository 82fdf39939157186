"""Read one YAML definition file into plain data plus the line of every key.

PyYAML's C loader composes the node tree (which carries positions) and then
constructs the Python values from it, so a file is parsed once. Duplicate keys,
which YAML silently collapses, are reported.

A definition is data from people who may not be trusted, so the shape of the
node tree is measured before any value is built: aliases let a few hundred
bytes stand for billions of values ("billion laughs"), an alias inside its own
anchor makes a structure that contains itself, and deep nesting or a number of
thousands of digits costs more than the whole file. The measure visits each
node once however often aliases repeat it, and each problem is refused naming
the file, line and key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from slipway.errors import DefinitionError

__all__ = [
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_NUMBER_CHARS",
    "MAX_VALUES",
    "SourceDocument",
    "parse_yaml",
]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path_ = tuple[str | int, ...]

MAX_DEFINITION_BYTES = 2**20
"""Bytes of one definition, as a file or a request body; the largest example has 2 000."""
MAX_VALUES = 50_000
"""Values (keys, scalars, lists and mappings) a document may hold, counted with
every alias expanded; a catalog of a thousand flavors holds about 12 000."""
MAX_DEPTH = 32
"""Levels of nesting; the deepest format needs 4."""
MAX_NUMBER_CHARS = 32
"""Characters of a number; the largest a definition needs has 5 digits."""

_NUMBER_TAGS = frozenset({"tag:yaml.org,2002:int", "tag:yaml.org,2002:float"})
_MERGE = "<<"


@dataclass(frozen=True)
class SourceDocument:
    """A parsed file: ``data`` and ``lines`` (key path → 1-based line)."""

    file: str
    data: Any
    lines: dict[Path_, int]

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return None


def parse_yaml(text: str, file: str) -> SourceDocument:
    """Parse ``text`` (the contents of ``file``); raises :class:`DefinitionError`."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise DefinitionError("the file is empty", file=file, line=1)
        _Measure(file).check(node)
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        _walk(node, (), lines, file, merged=False)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "not valid YAML"
        raise DefinitionError(f"not valid YAML: {problem}", file=file, line=line) from exc
    except yaml.YAMLError as exc:
        raise DefinitionError(f"not valid YAML: {exc}", file=file) from exc
    finally:
        loader.dispose()
    return SourceDocument(file, data, lines)


def _error(message: str, file: str, node: yaml.Node, path: Path_) -> DefinitionError:
    return DefinitionError(
        message, file=file, line=node.start_mark.line + 1, key=".".join(map(str, path)) or None
    )


def _children(node: yaml.Node, path: Path_, file: str) -> list[tuple[yaml.Node, Path_]]:
    """The nodes inside ``node`` with their key paths; keys count as values too."""
    if isinstance(node, yaml.SequenceNode):
        return [(item, (*path, index)) for index, item in enumerate(node.value)]
    found: list[tuple[yaml.Node, Path_]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            raise _error("a key must be text, not a list or mapping", file, key_node, path)
        found.append((key_node, path))
        found.append((value_node, (*path, key_node.value)))
    return found


class _Measure:
    """The size and height of every collection as if aliases were expanded,
    computed once per node: an alias repeats a node, not the work."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.known: dict[int, tuple[int, int]] = {}  # id(node) → (values, levels)
        self.open: set[int] = set()  # collections on the current path

    def check(self, root: yaml.Node) -> None:
        values, _ = self.measure(root, (), 0)
        if values <= MAX_VALUES:
            return
        where: yaml.Node = root
        path: Path_ = ()
        if isinstance(root, yaml.MappingNode) and root.value:
            # Name the top-level key whose value holds the most.
            where = max(root.value, key=lambda pair: self.measure(pair[1], (), 1)[0])[0]
            path = (where.value,)
        raise _error(
            f"the document holds more than {MAX_VALUES} values once its aliases are "
            f"expanded ({values} here)",
            self.file,
            where,
            path,
        )

    def measure(self, node: yaml.Node, path: Path_, depth: int) -> tuple[int, int]:
        if isinstance(node, yaml.ScalarNode):
            return 1, 0
        known = self.known.get(id(node))
        if known is None:
            if id(node) in self.open:
                raise _error(
                    "an alias refers to a list or mapping that contains it (a recursive anchor)",
                    self.file,
                    node,
                    path,
                )
            if depth >= MAX_DEPTH:
                raise _error(f"nested more than {MAX_DEPTH} levels deep", self.file, node, path)
            self.open.add(id(node))
            values, levels = 1, 0
            for child, child_path in _children(node, path, self.file):
                child_values, child_levels = self.measure(child, child_path, depth + 1)
                values += child_values
                levels = max(levels, child_levels + 1)
            self.open.discard(id(node))
            known = self.known[id(node)] = (values, levels)
        if depth + known[1] > MAX_DEPTH:
            raise _error(f"nested more than {MAX_DEPTH} levels deep", self.file, node, path)
        return known


def _walk(
    node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str, *, merged: bool
) -> None:
    """Record the line of every key path; ``merged``: inside a mapping merged
    in with ``<<``, whose keys yield to the ones written out. The measure has
    bounded how many nodes and levels there are to walk."""
    if isinstance(node, yaml.ScalarNode):
        if node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
            raise _error(
                f"a number of more than {MAX_NUMBER_CHARS} characters; "
                "no value in a definition is that large",
                file,
                node,
                path,
            )
        return
    if isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record(lines, (*path, index), item.start_mark.line + 1, merged)
            _walk(item, (*path, index), lines, file, merged=merged)
        return
    seen: set[str] = set()
    for key_node, value_node in node.value:
        key = key_node.value
        if key == _MERGE:  # the merged mapping's keys become this mapping's
            sources = (
                value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            )
            for source in sources:
                _walk(source, path, lines, file, merged=True)
            continue
        child = (*path, key)
        if key in seen:
            raise _error("key appears twice in the same mapping", file, key_node, child)
        seen.add(key)
        _record(lines, child, key_node.start_mark.line + 1, merged)
        _walk(value_node, child, lines, file, merged=merged)


def _record(lines: dict[Path_, int], path: Path_, line: int, merged: bool) -> None:
    if merged:
        lines.setdefault(path, line)
    else:
        lines[path] = line
