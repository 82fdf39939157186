"""Recipes: the YAML documents (``kind: recipe``) that ``slipway image build`` reads.

A recipe names a base distribution and release, the packages to add, files to
write, shell steps run in the image root, the disk size and the output
formats. Errors name the file, the line and the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from slipway.errors import DefinitionError, DefinitionErrors
from slipway.imagekit.first_boot import FirstBoot

__all__ = [
    "DiskFormat",
    "Recipe",
    "RecipeFile",
    "load_recipe",
    "parse_recipe",
]

GIB = 1024**3
_KEYS = {
    "kind",
    "description",
    "name",
    "base",
    "packages",
    "files",
    "steps",
    "disk",
    "formats",
    "first_boot",
}
_BASE_KEYS = {"distribution", "release", "arch", "mirror"}
_FILE_KEYS = {"path", "content", "source", "mode"}
_MAX_DISK_GIB = 2048


class DiskFormat(StrEnum):
    """Disk image formats the image kit writes and reads."""

    QCOW2 = "qcow2"
    RAW = "raw"
    VMDK = "vmdk"
    OVA = "ova"


@dataclass(frozen=True)
class RecipeFile:
    """A file the build writes into the image: absolute ``path``, its bytes and mode."""

    path: str
    content: bytes
    mode: int = 0o644


@dataclass(frozen=True)
class Recipe:
    """A validated recipe. ``disk_bytes`` is the virtual disk size in bytes."""

    name: str
    distribution: str
    release: str
    arch: str = "amd64"
    mirror: str | None = None
    description: str = ""
    packages: tuple[str, ...] = ()
    files: tuple[RecipeFile, ...] = ()
    steps: tuple[str, ...] = ()
    disk_bytes: int = 2 * GIB
    formats: tuple[DiskFormat, ...] = (DiskFormat.QCOW2,)
    first_boot: FirstBoot = FirstBoot.FAST
    source: str = field(default="<string>", compare=False)

    def digest(self) -> str:
        """A hex SHA-256 of everything that shapes the image (not the file's path)."""
        data = asdict(self)
        data.pop("source")
        data["files"] = [
            {"path": f.path, "mode": f.mode, "sha256": hashlib.sha256(f.content).hexdigest()}
            for f in self.files
        ]
        blob = json.dumps(data, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()


def _line(node: yaml.Node | None) -> int | None:
    return None if node is None else node.start_mark.line + 1


def _mapping(node: yaml.Node) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key name -> (key node, value node) of a YAML mapping node."""
    assert isinstance(node, yaml.MappingNode)
    return {str(k.value): (k, v) for k, v in node.value}


class _Reader:
    """Collects errors while turning the YAML node tree into a :class:`Recipe`."""

    def __init__(self, source: str, base_dir: Path | None) -> None:
        self.source = source
        self.base_dir = base_dir
        self.errors: list[DefinitionError] = []

    def error(
        self, message: str, node: yaml.Node | None, key: str, hint: str | None = None
    ) -> None:
        self.errors.append(
            DefinitionError(message, file=self.source, line=_line(node), key=key, hint=hint)
        )

    def scalar(self, node: yaml.Node, key: str) -> str | None:
        if not isinstance(node, yaml.ScalarNode) or node.value == "":
            self.error("expected a non-empty text value", node, key)
            return None
        return str(node.value)

    def strings(self, node: yaml.Node, key: str) -> tuple[str, ...]:
        if not isinstance(node, yaml.SequenceNode):
            self.error("expected a list", node, key)
            return ()
        values = [self.scalar(item, f"{key}[{i}]") for i, item in enumerate(node.value)]
        return tuple(v for v in values if v is not None)

    def unknown(self, node: yaml.Node, allowed: set[str], prefix: str) -> None:
        for name, (knode, _) in _mapping(node).items():
            if name not in allowed:
                self.error(
                    "unknown key",
                    knode,
                    f"{prefix}{name}",
                    hint=f"known: {', '.join(sorted(allowed))}",
                )

    def file(self, node: yaml.Node, key: str) -> RecipeFile | None:
        if not isinstance(node, yaml.MappingNode):
            self.error("expected a mapping with path and content or source", node, key)
            return None
        self.unknown(node, _FILE_KEYS, f"{key}.")
        items = _mapping(node)
        path = self.scalar(items["path"][1], f"{key}.path") if "path" in items else None
        if path is None:
            if "path" not in items:
                self.error("missing key", node, f"{key}.path")
            return None
        if not path.startswith("/"):
            self.error("must be an absolute path inside the image", items["path"][1], f"{key}.path")
        content: bytes | None = None
        if ("content" in items) == ("source" in items):
            self.error("give exactly one of content or source", node, key)
        elif "content" in items:
            vnode = items["content"][1]
            if not isinstance(vnode, yaml.ScalarNode):
                self.error("expected text", vnode, f"{key}.content")
            else:
                content = str(vnode.value).encode()
        else:
            vnode = items["source"][1]
            src = self.scalar(vnode, f"{key}.source")
            if src is not None:
                src_path = (self.base_dir or Path.cwd()) / src
                try:
                    content = src_path.read_bytes()
                except OSError as exc:
                    self.error(f"cannot read {src_path}: {exc.strerror}", vnode, f"{key}.source")
        mode = 0o644
        if "mode" in items:
            text = self.scalar(items["mode"][1], f"{key}.mode")
            try:
                mode = int(text or "", 8)
            except ValueError:
                self.error('expected an octal mode such as "0644"', items["mode"][1], f"{key}.mode")
        if content is None:
            return None
        return RecipeFile(path=path, content=content, mode=mode)

    def disk_size(self, node: yaml.Node) -> int | None:
        if not isinstance(node, yaml.MappingNode):
            self.error("expected a mapping such as {size_gib: 2}", node, "disk")
            return None
        self.unknown(node, {"size_gib"}, "disk.")
        items = _mapping(node)
        if "size_gib" not in items:
            return 2 * GIB
        vnode = items["size_gib"][1]
        try:
            size = float(vnode.value)
        except (TypeError, ValueError):
            size = -1.0
        if not 1 <= size <= _MAX_DISK_GIB:
            self.error(
                f"expected a number of GiB from 1 to {_MAX_DISK_GIB}", vnode, "disk.size_gib"
            )
            return None
        return int(size * GIB) // (1024 * 1024) * (1024 * 1024)


def parse_recipe(text: str, *, source: str = "<string>", base_dir: Path | None = None) -> Recipe:
    """Parse and validate recipe YAML; raise :class:`DefinitionError` (or several)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise DefinitionError(
            f"not valid YAML: {exc.problem}",
            file=source,
            line=None if mark is None else mark.line + 1,
        ) from exc
    if not isinstance(root, yaml.MappingNode):
        raise DefinitionError("a recipe must be a YAML mapping", file=source, line=_line(root))
    reader = _Reader(source, base_dir)
    reader.unknown(root, _KEYS, "")
    items = _mapping(root)
    kind = items.get("kind")
    if kind is None or kind[1].value != "recipe":
        reader.error("expected kind: recipe", kind[1] if kind else root, "kind")
    values: dict[str, Any] = {"source": source}
    values["name"] = Path(source).stem if source != "<string>" else "image"
    if "name" in items:
        values["name"] = reader.scalar(items["name"][1], "name") or values["name"]
    if "description" in items:
        values["description"] = reader.scalar(items["description"][1], "description") or ""
    base = items.get("base")
    if base is None:
        reader.error(
            "missing key", root, "base", hint="e.g. base: {distribution: debian, release: '12'}"
        )
    elif not isinstance(base[1], yaml.MappingNode):
        reader.error("expected a mapping", base[1], "base")
    else:
        reader.unknown(base[1], _BASE_KEYS, "base.")
        b = _mapping(base[1])
        for name in ("distribution", "release"):
            if name not in b:
                reader.error("missing key", base[1], f"base.{name}")
        for name in _BASE_KEYS:
            if name in b:
                values[name] = reader.scalar(b[name][1], f"base.{name}")
    if "packages" in items:
        values["packages"] = reader.strings(items["packages"][1], "packages")
    if "steps" in items:
        values["steps"] = reader.strings(items["steps"][1], "steps")
    if "files" in items:
        fnode = items["files"][1]
        if not isinstance(fnode, yaml.SequenceNode):
            reader.error("expected a list", fnode, "files")
        else:
            parsed = [reader.file(n, f"files[{i}]") for i, n in enumerate(fnode.value)]
            values["files"] = tuple(f for f in parsed if f is not None)
    if "disk" in items:
        values["disk_bytes"] = reader.disk_size(items["disk"][1])
    if "formats" in items:
        fmts = []
        for i, text_ in enumerate(reader.strings(items["formats"][1], "formats")):
            try:
                fmts.append(DiskFormat(text_.lower()))
            except ValueError:
                reader.error(
                    f"unknown format {text_!r}",
                    items["formats"][1].value[i],
                    f"formats[{i}]",
                    hint="one of qcow2, raw, vmdk, ova",
                )
        if fmts:
            values["formats"] = tuple(dict.fromkeys(fmts))
    if "first_boot" in items:
        values["first_boot"] = _first_boot(reader, items["first_boot"][1])
    _check_distribution(reader, values, items)
    DefinitionErrors.raise_if_any(reader.errors)
    return Recipe(**{k: v for k, v in values.items() if v is not None})


def _first_boot(reader: _Reader, node: yaml.Node) -> FirstBoot | None:
    text = reader.scalar(node, "first_boot")
    try:
        return FirstBoot((text or "").lower())
    except ValueError:
        if text is not None:
            reader.error(
                f"unknown first boot profile {text!r}",
                node,
                "first_boot",
                hint="fast (the default) or stock",
            )
        return None


def _check_distribution(
    reader: _Reader, values: dict[str, Any], items: dict[str, tuple[yaml.Node, yaml.Node]]
) -> None:
    from slipway.imagekit.distribution import Distribution  # the table of what we can build

    name = values.get("distribution")
    if name is None:
        return
    node = _mapping(items["base"][1])["distribution"][1]
    try:
        dist = Distribution(name.lower())
    except ValueError:
        reader.error(
            f"unknown distribution {name!r}",
            node,
            "base.distribution",
            hint=f"one of {', '.join(d.value for d in Distribution)}",
        )
        return
    values["distribution"] = dist.value
    release = values.get("release")
    if release is not None and dist.suite(release) is None:
        rnode = _mapping(items["base"][1])["release"][1]
        reader.error(
            f"unknown {dist.value} release {release!r}",
            rnode,
            "base.release",
            hint=f"one of {', '.join(dist.releases())}",
        )


def load_recipe(path: Path) -> Recipe:
    """Read and validate the recipe at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"cannot read recipe: {exc}", file=str(path)) from exc
    return parse_recipe(text, source=str(path), base_dir=path.parent)
