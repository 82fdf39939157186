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
    if "--signal" in args:
        os.kill(os.getpid(), 15)
    if "--message" in args:
        sys.exit("no datasource")
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


def start_server(
    tmp_path: Path, fake_cloud_init: Path, idle: float = 60, hold: float = 5
) -> tuple[subprocess.Popen[str], Path]:
    """The server in a process of its own; like systemd, its parent keeps the
    listening socket open after it ends, so a stage sent then is not refused."""
    sock = tmp_path / "s.sock"
    driver = textwrap.dedent(
        f"""
        import os, socket, sys, time
        sys.path.insert(0, {str(fake_cloud_init)!r})
        from slipway.imagekit.cloud_init_preload import serve
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        listener.bind({str(sock)!r})
        listener.listen()
        pid = os.fork()
        if pid == 0:
            os._exit(serve(listener, idle={idle}))
        code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        with open({str(tmp_path / "server.code")!r}, "w") as out:
            out.write(str(code))
        time.sleep({hold})
        sys.exit(code)
        """
    )
    env = {**os.environ, "IMPORTS_LOG": str(tmp_path / "imports.log")}
    proc = subprocess.Popen([sys.executable, "-c", driver], env=env, text=True)
    deadline = time.monotonic() + 30
    while not sock.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc, sock


@pytest.fixture
def server(tmp_path: Path, fake_cloud_init: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    proc, sock = start_server(tmp_path, fake_cloud_init)
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


def test_a_stage_that_dies_of_a_signal_ends_its_unit_with_that_signal(
    server: tuple[subprocess.Popen[str], Path],
) -> None:
    _, sock = server
    killed = run_stage(sock, "init", "--signal")
    assert killed.returncode == -15
    said = run_stage(sock, "init", "--message")
    assert said.returncode == 1 and "no datasource" in said.stderr


def test_when_cloud_init_cannot_be_loaded_every_stage_runs_it_by_itself(
    tmp_path: Path, fake_cloud_init: Path
) -> None:
    (fake_cloud_init / "cloudinit" / "cmd" / "main.py").write_text("raise ImportError('broken')\n")
    proc, sock = start_server(tmp_path, fake_cloud_init, idle=3, hold=120)
    try:
        for args in (("init", "--local"), ("init",)):
            alone = run_stage(sock, *args)
            assert alone.returncode == 0
            assert alone.stdout == " ".join(args) + "\n"  # the fallback (echo) ran it
        code = tmp_path / "server.code"  # and the server ends once no stage comes
        deadline = time.monotonic() + 30
        while not code.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert code.read_text() == "1"
    finally:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize(
    ("argv", "env"),
    [
        (["init", "--local"], {"PATH": "/usr/bin", "EMPTY": "", "EQUALS": "a=b=c"}),
        (["modules", "--mode=final"], {}),
        (["init", "caf\udce9"], {"LANG": "C.UTF-8", "ODD": "\udcff"}),  # not UTF-8: kept
    ],
)
def test_a_stage_request_carries_its_arguments_and_environment_unchanged(
    argv: list[str], env: dict[str, str]
) -> None:
    assert preload.decode_request(preload.encode_request(argv, env)) == (argv, env)


@pytest.mark.parametrize(
    "data",
    [b"", b"x\0init", b"0\0PATH=/bin", b"3\0init", b"1\0init\0NOEQUALS", b"1\0init\0=value"],
)
def test_a_malformed_stage_request_is_refused(data: bytes) -> None:
    assert preload.decode_request(data) is None


def test_the_stage_client_imports_nothing_heavy_before_it_hands_over(tmp_path: Path) -> None:
    """Each stage starts a new interpreter: socket, json or re would cost it
    ~0.5 s of an emulated boot."""
    code = textwrap.dedent(
        f"""
        import os, sys
        namespace = {{"__name__": "preload"}}
        exec(compile(open({preload.__file__!r}).read(), "preload", "exec"), namespace)
        def report(path, args):
            os.write(1, " ".join(sorted(sys.modules)).encode())
            os._exit(0)
        os.execv = report  # where the client gives up on the server
        namespace["stage"](["init"], path={str(tmp_path / "none.sock")!r}, fallback="/bin/true")
        """
    )
    out = subprocess.run(
        [sys.executable, "-S", "-E", "-c", code], capture_output=True, text=True, check=True
    )
    loaded = set(out.stdout.split())
    assert "_socket" in loaded
    assert not {"socket", "json", "re", "enum", "selectors", "traceback", "typing"} & loaded


def test_read_ahead_skips_what_is_gone_and_reads_the_rest(tmp_path: Path) -> None:
    files = [tmp_path / "a.pyc", tmp_path / "b.so"]
    for path in files:
        path.write_bytes(b"x" * 10000)
    paths = [str(files[0]), str(tmp_path / "moved.pyc"), str(files[1])]
    assert preload.read_ahead(paths) == 2


def test_record_lists_the_compiled_modules_and_libraries_the_import_read(
    tmp_path: Path, fake_cloud_init: Path
) -> None:
    listing = tmp_path / "files"
    code = (
        f"import sys; sys.path.insert(0, {str(fake_cloud_init)!r}); "
        "from slipway.imagekit.cloud_init_preload import record; "
        f"sys.exit(record({str(listing)!r}))"
    )
    # compiled ahead, as distribution packages are
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(fake_cloud_init)], check=True)
    env = {**os.environ, "IMPORTS_LOG": str(tmp_path / "imports.log")}
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    paths = listing.read_text().splitlines()
    main = next(p for p in paths if "cloudinit/cmd" in p)
    assert "__pycache__" in main and main.endswith(".pyc")  # not the source beside it
    assert all(Path(p).is_file() for p in paths)
    assert any(".so" in Path(p).name for p in paths)  # the interpreter's libraries
    assert len(paths) == len(set(paths))
