"""``slipway validate`` and ``import`` read regular files only: a FIFO (whose
reader waits for a writer forever), a device or a file too big to be a
definition is refused with exit 2, naming the path, without being read."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.security.conftest import Cli

IMAGE = "kind: image\ndescription: fine\n"


@contextmanager
def writer_after(fifo: Path, seconds: float = 20) -> Iterator[None]:
    """Should the command block reading ``fifo``, open its other end after a
    while so that the test fails instead of hanging."""
    done = threading.Event()

    def unblock() -> None:
        if not done.wait(seconds):
            with fifo.open("wb"):
                pass

    thread = threading.Thread(target=unblock, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    folder = tmp_path / "defs"
    folder.mkdir()
    (folder / "fine.yaml").write_text(IMAGE)
    return folder


@pytest.mark.parametrize("command", ["validate", "import"])
def test_a_fifo_in_a_folder_is_refused_without_being_opened(
    cli: Cli, tree: Path, command: str
) -> None:
    fifo = tree / "trap.yaml"
    os.mkfifo(fifo)
    with writer_after(fifo):
        done = cli(command, "defs")
    assert done.code == 2, done
    assert "defs/trap.yaml: a FIFO, not a regular file" in done.err
    if command == "import":
        assert cli("show", "defs/fine").code == 3  # nothing was saved


def test_a_fifo_named_on_the_command_line_is_refused(cli: Cli, tree: Path) -> None:
    fifo = tree / "named.yaml"
    os.mkfifo(fifo)
    with writer_after(fifo):
        done = cli("validate", "defs/named.yaml")
    assert done.code == 2, done
    assert "defs/named.yaml: a FIFO, not a regular file" in done.err


def test_a_link_to_a_device_is_refused(cli: Cli, tree: Path) -> None:
    (tree / "zero.yaml").symlink_to("/dev/zero")
    done = cli("validate", "defs")
    assert done.code == 2, done
    assert "defs/zero.yaml: a character device, not a regular file" in done.err


def test_a_file_over_one_mib_is_refused(cli: Cli, tree: Path) -> None:
    (tree / "huge.yaml").write_text(IMAGE + "# " + "x" * 2**20 + "\n")
    done = cli("validate", "defs")
    assert done.code == 2, done
    assert "defs/huge.yaml: larger than 1 MiB" in done.err


def test_regular_files_still_load(cli: Cli, tree: Path) -> None:
    done = cli("validate", "defs", "--output", "json")
    assert done.code == 0, done
    assert '"defs/fine"' in done.out
