"""The installed system a check looks at: the listing of the root filesystem and
the contents of the few files the checks read, fetched in one batch."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from slipway.imagekit.extfs import Entry, ExtFilesystem, is_safe, quote

__all__ = ["RootView"]

# Files the checks always read (if present); fetched together in one debugfs run.
CONFIG_FILES = (
    "/etc/passwd",
    "/etc/shadow",
    "/etc/login.defs",
    "/etc/fstab",
    "/etc/machine-id",
    "/var/lib/dbus/machine-id",
    "/etc/ssh/sshd_config",
    "/etc/cloud/cloud.cfg",
    "/etc/cloud/cloud-init.disabled",
    "/etc/nftables.conf",
    "/etc/iptables/rules.v4",
    "/etc/iptables/rules.v6",
    "/etc/sysconfig/iptables",
    "/etc/sysconfig/ip6tables",
    "/etc/ufw/ufw.conf",
    "/etc/default/ufw",
    "/var/lib/dpkg/status",
)
SMALL_FILE = 64 * 1024  # bytes; larger files are not read for key headers


@dataclass
class RootView:
    """A root filesystem: every entry by path, and file contents on demand (cached)."""

    fs: ExtFilesystem
    entries: dict[str, Entry]
    partition: int | None
    block_size: int = 4096
    _cache: dict[str, bytes] = field(default_factory=dict)
    _index: dict[str, list[Entry]] | None = None

    @classmethod
    def load(cls, fs: ExtFilesystem, partition: int | None, block_size: int) -> RootView:
        return cls(fs, fs.walk("/"), partition, block_size)

    def evidence(self, path: str, **extra: object) -> dict[str, object]:
        """Evidence for a finding about ``path``: partition, path and size in bytes."""
        entry = self.entries.get(path)
        data: dict[str, object] = {"partition": self.partition, "path": path}
        if entry is not None and entry.is_file:
            data["size"] = entry.size
        data.update(extra)
        return data

    def exists(self, path: str) -> bool:
        return path in self.entries

    def file(self, path: str) -> Entry | None:
        entry = self.entries.get(path)
        return entry if entry is not None and entry.is_file else None

    def under(self, *tops: str) -> Iterator[Entry]:
        """Entries below any of ``tops`` (absolute paths without trailing slash)."""
        prefixes = tuple(t.rstrip("/") + "/" for t in tops)
        for path, entry in self.entries.items():
            if path.startswith(prefixes):
                yield entry

    def glob(self, pattern: str) -> list[Entry]:
        """Entries matching a shell pattern on the last path component, sorted by path."""
        parent, _, name = pattern.rpartition("/")
        children = self._children().get(parent or "/", [])
        return sorted(
            (e for e in children if fnmatch.fnmatchcase(e.name, name)), key=lambda e: e.path
        )

    def _children(self) -> dict[str, list[Entry]]:
        if self._index is None:
            index: dict[str, list[Entry]] = {}
            for path, entry in self.entries.items():
                index.setdefault(path.rpartition("/")[0] or "/", []).append(entry)
            self._index = index
        return self._index

    def named(self, names: Iterable[str]) -> Iterator[Entry]:
        wanted = frozenset(names)
        for entry in self.entries.values():
            if entry.name in wanted:
                yield entry

    def prefetch(self, paths: Iterable[str]) -> None:
        """Read many regular files in one debugfs run, for later :meth:`read` calls."""
        missing = [p for p in paths if p not in self._cache and self.file(p) is not None]
        if missing:
            self._cache.update(self.fs.read(missing))

    def read(self, path: str) -> bytes | None:
        """A regular file's bytes, or None when it does not exist."""
        if self.file(path) is None:
            return None
        if path not in self._cache:
            self.prefetch([path])
        return self._cache.get(path)

    def text(self, path: str) -> str | None:
        data = self.read(path)
        return None if data is None else data.decode("utf-8", "replace")

    def first_block(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The first 4 KiB of each (possibly huge) file, read from the disk directly."""
        wanted = [p for p in paths if self.file(p) is not None and is_safe(p)]
        blocks = self.fs.batch([f"bmap {quote(p)} 0" for p in wanted])
        result: dict[str, bytes] = {}
        with self.fs.raw.open("rb") as fh:
            for path, out in zip(wanted, blocks, strict=True):
                text = out.strip().splitlines()[-1:] or [""]
                if not text[0].isdigit() or int(text[0]) == 0:
                    continue
                fh.seek(self.fs.offset + int(text[0]) * self.block_size)
                result[path] = fh.read(4096)
        return result
