"""cloud-init in one process: the script images carry, run here against a
stand-in cloud-init whose ``main`` says what it got."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import slipway.imagekit.cloud_init_preload as preload

FAKE_MAIN = """\
import os, sys
with open(os.environ["IMPORTS_LOG"], "a") as log:
    log.write("imported\\n")

def main(argv):
    args = argv[1:]
    print("stage", " ".join(args), os.environ.get("STAGE_MARK"), flush=True)
    print("stage stderr", file=sys.stderr, flush=True)
    return 3 if "--fail" in args else None
"""


@pytest.fixture
def fake_cloud_init(tmp_path: Path) -> Path:
    package = tmp_path / "fake" / "cloudinit" / "cmd"
    package.mkdir(parents=True)
    for folder in (package.parent, package):
        (folder / "__init__.py").write_text("")
    (package / "main.py").write_text(FAKE_MAIN)
    return tmp_path / "fake"


@pytest.fixture
def server(tmp_path: Path, fake_cloud_init: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    sock = tmp_path / "s.sock"
    driver = textwrap.dedent(
        f"""
        import socket, sys
        sys.path.insert(0, {str(fake_cloud_init)!r})
        from slipway.imagekit.cloud_init_preload import serve
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind({str(sock)!r})
        listener.listen()
        sys.exit(serve(listener, idle=60))
        """
    )
    env = {**os.environ, "IMPORTS_LOG": str(tmp_path / "imports.log")}
    proc = subprocess.Popen([sys.executable, "-c", driver], env=env, text=True)
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc, sock
    proc.kill()
    proc.wait()


def run_stage(
    sock: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys; from slipway.imagekit.cloud_init_preload import stage; "
        f"sys.exit(stage(sys.argv[1:], path={str(sock)!r}, fallback='/bin/echo'))"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_each_stage_runs_in_the_preloaded_cloud_init_with_its_own_streams_and_environment(
    server: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    proc, sock = server
    local = run_stage(sock, "init", "--local", env={"STAGE_MARK": "first"})
    assert local.returncode == 0
    assert local.stdout == "stage init --local first\n"
    assert "stage stderr" in local.stderr
    failing = run_stage(sock, "init", "--fail", env={"STAGE_MARK": "second"})
    assert failing.returncode == 3
    assert failing.stdout == "stage init --fail second\n"
    final = run_stage(sock, "modules", "--mode=final")
    assert final.returncode == 0
    # cloud-init was imported once for the three stages, and the server ends after the last
    assert (tmp_path / "imports.log").read_text() == "imported\n"
    assert proc.wait(timeout=30) == 0


def test_without_a_server_the_stage_runs_cloud_init_by_itself(tmp_path: Path) -> None:
    alone = run_stage(tmp_path / "missing.sock", "init", "--local")
    assert alone.returncode == 0
    assert alone.stdout == "init --local\n"  # what the fallback (echo here) was given


def test_the_script_images_carry_runs_on_its_own() -> None:
    source = Path(preload.__file__).read_text()
    assert "import slipway" not in source and "from slipway" not in source
    usage = subprocess.run(
        [sys.executable, "-S", "-E", preload.__file__], capture_output=True, text=True, check=False
    )
    assert usage.returncode == 1 and "usage" in usage.stderr
