"""Bad input gets a clear message and exit status 2, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = "from slipway.entrypoints.cli.app import main; main()"


def slipway(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLIPWAY_DATA_DIR": str(data_dir), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-c", CLI, *args], capture_output=True, text=True, env=env, check=False
    )


def bad_file(kind: str, folder: Path, small_disk: Path) -> Path:
    path = folder / f"{kind}.img"
    if kind == "random-bytes":
        path.write_bytes(os.urandom(1024 * 1024))
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated-qcow2":
        whole = folder / "whole.qcow2"
        subprocess.run(["qemu-img", "convert", "-O", "qcow2", small_disk, whole], check=True)
        path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    elif kind == "missing":
        pass
    return path


KINDS = ["random-bytes", "empty", "truncated-qcow2", "missing"]
EXPECTED = {
    "random-bytes": "not a disk image",
    "empty": "empty",
    "truncated-qcow2": "damaged qcow2",
    "missing": "no such image file",
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "command",
    [
        ["image", "convert", "{file}", "{out}/x.raw", "--to", "raw"],
        ["image", "compact", "{file}", "{out}/x.qcow2"],
        ["image", "import", "{file}", "--name", "x"],
        ["image", "test", "{file}"],
    ],
)
def test_unreadable_images_are_refused_with_exit_2(
    kind: str, command: list[str], small_disk: Path, tmp_path: Path
) -> None:
    path = bad_file(kind, tmp_path, small_disk)
    out = tmp_path / "out"
    args = [a.format(file=path, out=out) for a in command]
    proc = slipway(*args, data_dir=tmp_path / "data")
    assert proc.returncode == 2, proc.stderr
    assert EXPECTED[kind] in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not (tmp_path / "data" / "images" / "x.json").exists()
    assert not (tmp_path / "data" / "machines").exists()


@pytest.mark.parametrize(
    ("text", "where"),
    [
        (
            "kind: recipe\nbase: {distribution: debian, release: '12'}\ndisk: {size_gib: lots}\n",
            "recipe.yaml:3: disk.size_gib",
        ),
        (
            "kind: recipe\nbase: {distribution: debian, release: '12'}\nformats: [qcow3]\n",
            "recipe.yaml:3: formats[0]",
        ),
        ("kind: recipe\nbase: [\n", "recipe.yaml:3"),
        ("kind: recipe\n", "recipe.yaml:1: base"),
    ],
)
def test_a_bad_recipe_names_file_line_and_key_and_exits_2(
    text: str, where: str, tmp_path: Path
) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(text)
    proc = slipway(
        "image", "build", str(recipe), "-d", str(tmp_path / "out"), data_dir=tmp_path / "data"
    )
    assert proc.returncode == 2, proc.stderr
    assert where in proc.stderr.replace(str(tmp_path) + "/", "")
    assert not (tmp_path / "out").exists()


def test_an_unknown_output_format_is_refused(small_disk: Path, tmp_path: Path) -> None:
    proc = slipway(
        "image",
        "convert",
        str(small_disk),
        str(tmp_path / "x"),
        "--to",
        "vhd",
        data_dir=tmp_path / "data",
    )
    assert proc.returncode == 2
    assert "unknown image format 'vhd'" in proc.stderr
