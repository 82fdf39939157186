"""An ext2/3/4 filesystem inside a raw disk, read (or edited) offline with e2fsprogs.

Every request goes to ``debugfs`` on ``'disk.raw?offset=N'``; many requests are
batched into one run (``debugfs -f``), so listing a whole Debian root takes a
dozen runs (one per directory level), not thousands. Nothing is mounted.
"""

from __future__ import annotations

import re
import stat
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from slipway.imagekit.diskaccess import run_tool, tool_path

__all__ = ["Entry", "ExtFilesystem", "Superblock", "is_safe", "quote"]

_WALKERS = 2  # debugfs processes listing one directory level at once
_MAX_ENTRIES = 2_000_000  # a root with more files than this is not a VM image
_LS_LINE = re.compile(r"^/(\d+)/(\d+)/(\d+)/(\d+)/(.*)/(\d*)/$")


@dataclass(frozen=True)
class Entry:
    """One directory entry: absolute path, inode, mode bits, owner, group, size in bytes."""

    path: str
    inode: int
    mode: int
    uid: int
    gid: int
    size: int

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)

    @property
    def is_file(self) -> bool:
        return stat.S_ISREG(self.mode)

    @property
    def is_symlink(self) -> bool:
        return stat.S_ISLNK(self.mode)

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class Superblock:
    """Sizes of the filesystem (bytes) and the free block ranges (block numbers, inclusive)."""

    block_size: int
    block_count: int
    free_blocks: int
    free_ranges: tuple[tuple[int, int], ...]

    @property
    def used_bytes(self) -> int:
        return (self.block_count - self.free_blocks) * self.block_size


_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')


def is_safe(path: str) -> bool:
    """Whether ``path`` can go into a debugfs command line as one argument.

    Names come from the image, which may be crafted: a quote or a control
    character could split a command and make debugfs write on this machine
    (``dump``), so such paths are never put in a command.
    """
    return not _UNSAFE.search(path)


def quote(path: str) -> str:
    """``path`` as one debugfs argument (debugfs splits on blanks, honours double quotes)."""
    if not is_safe(path):
        raise ValueError(f"unsafe path for debugfs: {path!r}")
    return f'"{path}"' if any(c in path for c in " '") else path


class ExtFilesystem:
    """The ext filesystem at byte ``offset`` of the raw disk ``raw``."""

    def __init__(self, raw: Path, offset: int) -> None:
        self.raw = raw
        self.offset = offset
        self.spec = f"{raw}?offset={offset}"

    # -- running e2fsprogs -------------------------------------------------------------

    def batch(self, commands: Sequence[str], *, writable: bool = False) -> list[str]:
        """Run debugfs commands in one process; return each command's output."""
        if not commands:
            return []
        with tempfile.NamedTemporaryFile("w", prefix="slipway-debugfs-", suffix=".cmd") as fh:
            fh.write("\n".join(commands) + "\n")
            fh.flush()
            args = ["debugfs", *(["-w"] if writable else []), "-f", fh.name, self.spec]
            out = run_tool(args, timeout=600)
        outputs: list[str] = []
        current: list[str] | None = None
        for line in out.split("\n"):
            if line.startswith("debugfs: "):
                if current is not None:
                    outputs.append("\n".join(current))
                current = []
            elif current is not None:
                current.append(line)
        if current is not None:
            outputs.append("\n".join(current))
        return outputs + [""] * (len(commands) - len(outputs))

    def superblock(self) -> Superblock:
        """Block size and counts, and where the free blocks are (``dumpe2fs``)."""
        out = run_tool(["dumpe2fs", self.spec])
        header: dict[str, str] = {}
        ranges: list[tuple[int, int]] = []
        for line in out.splitlines():
            if line.startswith("  Free blocks: "):
                for part in line.split(":", 1)[1].split(","):
                    part = part.strip()
                    if part:
                        lo, _, hi = part.partition("-")
                        ranges.append((int(lo), int(hi or lo)))
            elif ":" in line and not line.startswith(" "):
                key, _, value = line.partition(":")
                header.setdefault(key.strip(), value.strip())
        return Superblock(
            block_size=int(header.get("Block size", "4096")),
            block_count=int(header.get("Block count", "0")),
            free_blocks=int(header.get("Free blocks", "0")),
            free_ranges=tuple(ranges),
        )

    def start_fsck(self) -> subprocess.Popen[str]:
        """Start ``e2fsck -fn`` in the background (it reads; it never writes)."""
        return subprocess.Popen(
            [tool_path("e2fsck"), "-fn", self.spec],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )

    # -- reading -----------------------------------------------------------------------

    def walk(self, top: str = "/") -> dict[str, Entry]:
        """Every entry below ``top`` by absolute path, one debugfs run per level.

        A wide level is split over two debugfs processes: reading a compressed
        image is bound by inflating clusters, and two readers halve the wait.
        """
        entries: dict[str, Entry] = {}
        level = [top]
        with ThreadPoolExecutor(_WALKERS) as pool:
            while level and len(entries) < _MAX_ENTRIES:
                parts = (
                    [level[i::_WALKERS] for i in range(_WALKERS)] if len(level) > 64 else [level]
                )
                done = pool.map(lambda part: self.batch([f"ls -p {quote(d)}" for d in part]), parts)
                nxt: list[str] = []
                for part, outputs in zip(parts, done, strict=True):
                    for directory, output in zip(part, outputs, strict=True):
                        for entry in _parse_ls(directory, output):
                            entries[entry.path] = entry
                            if entry.is_dir and is_safe(entry.path):
                                nxt.append(entry.path)
                level = nxt
        return entries

    def read(self, paths: Iterable[str]) -> dict[str, bytes]:
        """The contents of ``paths`` (files that cannot be dumped are left out)."""
        wanted = [p for p in dict.fromkeys(paths) if is_safe(p)]
        result: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory(prefix="slipway-dump-") as tmp:
            commands = [f"dump {quote(p)} {Path(tmp) / str(i)}" for i, p in enumerate(wanted)]
            for start in range(0, len(commands), 2000):
                self.batch(commands[start : start + 2000])
            for i, path in enumerate(wanted):
                target = Path(tmp) / str(i)
                if target.exists():
                    result[path] = target.read_bytes()
        return result

    def read_text(self, path: str) -> str | None:
        data = self.read([path]).get(path)
        return None if data is None else data.decode("utf-8", "replace")


def _parse_ls(directory: str, output: str) -> Iterator[Entry]:
    base = directory.rstrip("/")
    for line in output.split("\n"):
        match = _LS_LINE.match(line)
        if not match:
            continue
        inode, mode, uid, gid, name, size = match.groups()
        if name in (".", "..") or inode == "0":
            continue
        yield Entry(f"{base}/{name}", int(inode), int(mode, 8), int(uid), int(gid), int(size or 0))
