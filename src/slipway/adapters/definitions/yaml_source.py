"""Read one YAML definition file into plain data plus the line of every key.

PyYAML's C loader composes the node tree (which carries positions) and then
constructs the Python values from it, so a file is parsed once. Duplicate keys,
which YAML silently collapses, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from slipway.errors import DefinitionError

__all__ = ["SourceDocument", "parse_yaml"]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
Path_ = tuple[str | int, ...]


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
        lines: dict[Path_, int] = {(): node.start_mark.line + 1}
        _walk(node, (), lines, file)
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


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], file: str) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            if key == "<<":  # merge key: positions come from the merged mapping
                continue
            if key in seen:
                raise DefinitionError(
                    "key appears twice in the same mapping",
                    file=file,
                    line=key_node.start_mark.line + 1,
                    key=".".join(map(str, (*path, key))),
                )
            seen.add(key)
            child = (*path, key)
            lines[child] = key_node.start_mark.line + 1
            _walk(value_node, child, lines, file)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = (*path, index)
            lines[child] = item.start_mark.line + 1
            _walk(item, child, lines, file)
