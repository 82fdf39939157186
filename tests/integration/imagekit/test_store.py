"""The local image store: import, list, remove, and what it refuses."""

from __future__ import annotations

import errno
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from slipway.errors import Conflict, ImageFileError, InputError, NotFound
from slipway.imagekit.convert import convert, open_image
from slipway.imagekit.recipe import DiskFormat
from slipway.imagekit.store import ImageStore
from slipway.imagekit.tools import run


@pytest.fixture(scope="module")
def small_qcow2(small_disk: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("qcow2") / "small.qcow2"
    convert(open_image(small_disk), path, DiskFormat.QCOW2)
    return path


class FakeRuns:
    """Which runs use which image: the part of the run store the image store asks."""

    def __init__(self) -> None:
        self.using: dict[str, list[str]] = {}

    def __call__(self, name: str) -> list[str]:
        return self.using.get(name, [])


@dataclass(frozen=True)
class FakeReport:
    status: str
    findings: tuple[str, ...] = ()


def test_an_imported_qcow2_is_copied_with_its_sha512_and_sizes(
    small_qcow2: Path, tmp_path: Path
) -> None:
    store = ImageStore(tmp_path / "images")
    entry = store.import_file(small_qcow2, "small", os_info={"distribution": "debian"})
    assert entry.id == "small"
    assert entry.sha512 == hashlib.sha512(small_qcow2.read_bytes()).hexdigest()
    assert entry.file_size == small_qcow2.stat().st_size
    assert entry.virtual_size == 64 * 1024 * 1024
    assert entry.os == {"distribution": "debian"}
    assert entry.check is None
    assert store.image_path("small").read_bytes() == small_qcow2.read_bytes()
    assert [e.name for e in store.list()] == ["small"]
    assert store.get("small") == entry
    meta = json.loads((tmp_path / "images" / "small.json").read_text())
    assert meta["id"] == "small" and meta["format"] == "qcow2"


def test_a_linked_import_shares_the_file_instead_of_copying_it(
    small_qcow2: Path, tmp_path: Path
) -> None:
    handed_over = tmp_path / "download.qcow2"
    handed_over.write_bytes(small_qcow2.read_bytes())
    store = ImageStore(tmp_path / "images")
    entry = store.import_file(handed_over, "small", link=True)
    assert store.image_path("small").stat().st_ino == handed_over.stat().st_ino
    assert entry.sha512 == hashlib.sha512(small_qcow2.read_bytes()).hexdigest()
    assert entry.file_size == small_qcow2.stat().st_size
    assert {p.name for p in (tmp_path / "images").iterdir()} == {
        ".lock",
        "small.json",
        "small.qcow2",
    }


def test_a_linked_import_is_copied_where_the_file_system_cannot_link(
    small_qcow2: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def other_device(source: object, target: object) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr("slipway.imagekit.store.os.link", other_device)
    store = ImageStore(tmp_path / "images")
    entry = store.import_file(small_qcow2, "small", link=True)
    assert store.image_path("small").stat().st_ino != small_qcow2.stat().st_ino
    assert store.image_path("small").read_bytes() == small_qcow2.read_bytes()
    assert entry.sha512 == hashlib.sha512(small_qcow2.read_bytes()).hexdigest()
    assert {p.name for p in (tmp_path / "images").iterdir()} == {
        ".lock",
        "small.json",
        "small.qcow2",
    }


@pytest.mark.parametrize("fmt", [DiskFormat.RAW, DiskFormat.VMDK, DiskFormat.OVA])
def test_other_formats_are_stored_as_qcow2_with_the_same_content(
    fmt: DiskFormat, small_disk: Path, tmp_path: Path
) -> None:
    source = tmp_path / f"src.{fmt.value}"
    convert(open_image(small_disk), source, fmt)
    entry = ImageStore(tmp_path / "images").import_file(source, "img")
    stored = tmp_path / "images" / "img.qcow2"
    assert entry.source_format == fmt.value
    assert open_image(stored).container is DiskFormat.QCOW2
    assert run(["qemu-img", "compare", small_disk, stored], ok_codes=(0, 1)).returncode == 0
    assert entry.sha512 == hashlib.sha512(stored.read_bytes()).hexdigest()


def test_the_check_result_is_recorded_when_a_checker_is_given(
    small_qcow2: Path, tmp_path: Path
) -> None:
    seen: list[Path] = []

    def checker(path: Path) -> FakeReport:
        seen.append(path)
        return FakeReport("clean", ("none",))

    entry = ImageStore(tmp_path / "images", checker=checker).import_file(small_qcow2, "c")
    assert entry.check == {"status": "clean", "findings": ["none"]}
    assert len(seen) == 1


def test_a_failing_import_leaves_nothing_half_written(small_qcow2: Path, tmp_path: Path) -> None:
    def checker(path: Path) -> None:
        raise RuntimeError("interrupted")

    store = ImageStore(tmp_path / "images", checker=checker)
    with pytest.raises(RuntimeError):
        store.import_file(small_qcow2, "half")
    assert store.list() == []
    assert sorted(p.name for p in (tmp_path / "images").iterdir() if p.name != ".lock") == []


def test_rm_is_refused_while_a_run_uses_the_image(small_qcow2: Path, tmp_path: Path) -> None:
    runs = FakeRuns()
    store = ImageStore(tmp_path / "images", users_of=runs)
    store.import_file(small_qcow2, "busy")
    runs.using["busy"] = ["run-1", "run-2"]
    with pytest.raises(Conflict, match="run-1, run-2") as info:
        store.remove("busy")
    assert info.value.exit_code == 5
    assert store.image_path("busy").exists()
    runs.using.clear()
    store.remove("busy")
    assert store.list() == []
    assert not store.image_path("busy").exists()


def test_names_must_be_unique_and_simple(small_qcow2: Path, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    store.import_file(small_qcow2, "one")
    with pytest.raises(Conflict):
        store.import_file(small_qcow2, "one")
    for bad in ("", "Upper", "../escape", "a/b", "x" * 64):
        with pytest.raises(InputError):
            store.import_file(small_qcow2, bad)


def test_unknown_names_are_not_found(tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    assert store.list() == []
    with pytest.raises(NotFound):
        store.remove("ghost")
    with pytest.raises(NotFound):
        store.get("../../etc/passwd")


def test_an_overlay_with_a_backing_file_is_refused(small_qcow2: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", small_qcow2, "-F", "qcow2", overlay])
    with pytest.raises(ImageFileError, match="reads other files"):
        ImageStore(tmp_path / "images").import_file(overlay, "overlay")


def test_what_a_killed_import_left_is_swept_and_a_running_one_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    import slipway.imagekit.store as store_module

    store = ImageStore(tmp_path / "images")
    store.root.mkdir()
    dead = store.root / ".alpha.qcow2.k1l2ed.tmp"
    dead.write_bytes(b"half an image")
    kept = store.root / "beta.json"
    kept.write_text("{}")

    assert store.sweep() == ()  # just made: it may be an import running now
    later = time.time() + store_module.LEFTOVER_AGE_S + 60
    monkeypatch.setattr(store_module.time, "time", lambda: later)
    assert store.sweep() == (dead,)
    assert not dead.exists() and kept.exists()
