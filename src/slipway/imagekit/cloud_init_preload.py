"""cloud-init in one process: Python and cloud-init are loaded once per boot,
and each of cloud-init's four stages runs in a fork of that process.

This file is copied into images (as ``/usr/lib/slipway/cloud-init-preload``)
and run there by the guest's own ``python3``; it uses the standard library
only and runs on Python 3.9 and later.

Why: under emulation, starting ``cloud-init`` costs 10 to 20 s before it does
anything (the interpreter, then ~300 modules: requests, jinja2, jsonschema...),
and a boot starts it four times — most of a first boot. cloud-init 24.3
and later run their stages in one process themselves; for older releases
(Debian 12 ships 22.4) the image builds this instead:

``serve``
    Started at the very beginning of the boot (in parallel with udev and
    fsck), imports cloud-init ahead of the early units, then waits on the socket systemd passes it.
    For each stage it receives the stage's arguments, environment and
    standard streams, forks, and the child runs cloud-init's ``main`` with
    them — so every stage still starts from a freshly imported cloud-init,
    exactly as a new process would. It answers with the exit status and
    ends after the final stage (or after ``IDLE_S`` without a request).
``stage ARGS…``
    What each stage's unit runs instead of ``cloud-init ARGS…``: it hands
    its streams to the server and exits with the stage's exit status. When
    no server answers it runs ``cloud-init ARGS…`` itself, so a stage never
    depends on this speed-up to work. It is a new interpreter per stage, so
    it imports almost nothing: the public ``socket`` and ``json`` modules
    alone cost ~0.5 s of an emulated boot (enums built at import, ``re``).
``record FILE``
    Run at build time in the image: imports cloud-init and writes the files
    that took (modules, compiled modules, shared libraries), in import
    order. At boot the server has them read ahead by a child process while
    it imports, so the import does not wait for the disk file by file.
"""

from __future__ import annotations

import os
import sys

# Only os and sys at the top: everything else is imported where it is used,
# so that the stage client stays cheap to start (see the module docstring).
TYPE_CHECKING = False
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable, Iterable

    Main = Callable[[list[str]], object]

__all__ = [
    "FALLBACK",
    "IDLE_S",
    "LISTEN_FD",
    "READ_AHEAD",
    "SOCKET",
    "decode_request",
    "encode_request",
    "read_ahead",
    "record",
    "serve",
    "stage",
]

SOCKET = "/run/slipway-cloud-init.sock"
FALLBACK = "/usr/bin/cloud-init"
READ_AHEAD = "/usr/lib/slipway/cloud-init-preload.files"
"""The files cloud-init's import reads, one path a line, as ``record`` wrote them."""
LISTEN_FD = 3  # the first socket systemd passes (sd_listen_fds)
IDLE_S = 1800.0
"""Seconds the server waits for a stage before it gives up and ends."""
IMPORT_NICE = -10
LAST_STAGE = ["modules", "--mode=final"]
_STARTED = b"started"
_MAX_REQUEST = 1 << 20  # bytes: the arguments and the environment of a stage


def _nice(value: int) -> None:
    """Set this process's scheduling priority: the import runs beside early
    boot's many small units and is what the first stage waits for."""
    import contextlib

    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, value)


def _load_cloud_init() -> Main:
    import importlib

    module = importlib.import_module("cloudinit.cmd.main")
    main: Main = module.main
    return main


def encode_request(argv: list[str], env: dict[str, str]) -> bytes:
    """A stage's arguments and environment as one message: the number of
    arguments, the arguments, then ``NAME=value`` pairs, NUL-separated
    (neither can hold a NUL)."""
    fields = [str(len(argv)), *argv, *(f"{k}={v}" for k, v in env.items())]
    return b"\0".join(os.fsencode(f) for f in fields)


def decode_request(data: bytes) -> tuple[list[str], dict[str, str]] | None:
    """What :func:`encode_request` wrote, or None when it is not that."""
    fields = [os.fsdecode(f) for f in data.split(b"\0")]
    if not fields[0].isdigit():
        return None
    count = int(fields[0])
    if not 0 < count < len(fields):
        return None
    argv = fields[1 : count + 1]
    env: dict[str, str] = {}
    for pair in fields[count + 1 :]:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            return None
        env[name] = value
    return argv, env


def _paths(listing: str) -> list[str]:
    from pathlib import Path

    try:
        text = Path(listing).read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.startswith("/")]


def read_ahead(paths: Iterable[str]) -> int:
    """Ask the kernel to read ``paths`` into the page cache (without waiting
    for the data); returns how many could be opened. Missing files are
    skipped: a package upgraded since the build moves some."""
    opened = 0
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED)
            opened += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return opened


def _start_read_ahead(listing: str) -> int | None:
    """Fork a child that reads ahead what the import will read; its pid, or
    None when there is nothing to read. A child rather than a thread: a
    thread would wait for the interpreter lock the import holds."""
    paths = _paths(listing)
    if not paths:
        return None
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:
        code = 1
        try:
            read_ahead(paths)
            code = 0
        finally:
            os._exit(code)
    return pid


def _loaded_files() -> list[str]:
    """The files the modules imported so far were loaded from (the compiled
    module where there is one: a source beside it is only looked at) and the
    shared libraries mapped, in import order; /proc may be missing in a
    build's chroot, and then the libraries are left out."""
    from pathlib import Path

    found: list[str] = []
    for module in list(sys.modules.values()):
        compiled, source = getattr(module, "__cached__", None), getattr(module, "__file__", None)
        path = compiled if isinstance(compiled, str) and Path(compiled).is_file() else source
        if isinstance(path, str):
            found.append(path)
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        maps = ""
    found += [line.split(None, 5)[-1] for line in maps.splitlines() if "/" in line]
    return [path for path in dict.fromkeys(found) if path.startswith("/") and Path(path).is_file()]


def record(listing: str, load: Callable[[], Main] = _load_cloud_init) -> int:
    """Import cloud-init and write the files it read to ``listing``."""
    from pathlib import Path

    load()
    text = "".join(f"{path}\n" for path in _loaded_files())
    Path(listing).write_text(text, encoding="utf-8", errors="surrogateescape")
    return 0


def _run_in_child(main: Main, argv: list[str], env: dict[str, str], fds: list[int]) -> None:
    """In the forked child: become the stage's process, run it, exit with its status."""
    import contextlib
    import traceback

    code = 1
    try:
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            if fd > 2:
                os.close(fd)
        os.environ.clear()
        os.environ.update(env)
        sys.argv = [FALLBACK, *argv]
        result = main([FALLBACK, *argv])
        code = result if isinstance(result, int) else 0
    except SystemExit as exc:
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:  # sys.exit("message"): Python prints the message and exits 1
            print(exc.code, file=sys.stderr)
    except BaseException:  # a crash must still end the child with a status
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


def _receive(conn: socket.socket) -> tuple[list[str], dict[str, str], list[int]] | None:
    """A stage's arguments, environment and streams, or None for a bad request."""
    import socket

    data, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
    request = decode_request(data)
    if len(fds) != 3 or request is None:
        for fd in fds:
            os.close(fd)
        return None
    argv, env = request
    return argv, env, fds


def _serve_one(listener: socket.socket, main: Main) -> list[str] | None:
    """Run one stage; returns its arguments ([] for a bad request), or None
    when no stage came in time."""
    import contextlib
    import socket

    try:
        conn, _ = listener.accept()
    except socket.timeout:  # noqa: UP041 - not yet TimeoutError on Python 3.9
        return None
    with conn:
        request = _receive(conn)
        if request is None:
            return []
        argv, env, fds = request
        try:
            # Said before the fork: once the stage may have started, the
            # client must never fall back and run it a second time.
            conn.sendall(_STARTED)
        except OSError:  # the client is gone: nobody waits for this stage
            for fd in fds:
                os.close(fd)
            return argv
        pid = os.fork()
        if pid == 0:
            listener.close()
            conn.close()
            _run_in_child(main, argv, env, fds)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        with contextlib.suppress(OSError):
            conn.sendall(str(os.waitstatus_to_exitcode(status)).encode())
        return argv


def _refuse_all(listener: socket.socket) -> int:
    """cloud-init would not load: close every stage's connection unanswered,
    so that each runs cloud-init by itself, until none comes in time."""
    import socket

    while True:
        try:
            conn, _ = listener.accept()
        except socket.timeout:  # noqa: UP041 - not yet TimeoutError on Python 3.9
            return 1
        conn.close()


def _import(load: Callable[[], Main]) -> Main | None:
    """cloud-init's ``main``, or None when it will not load. The cyclic
    garbage collector is held off meanwhile (the import only creates), and
    what was loaded is then frozen out of its reach: the stages' forks
    neither walk nor copy it in their own collections."""
    import gc
    import traceback

    gc.disable()
    try:
        return load()
    except Exception:
        traceback.print_exc()
        return None
    finally:
        gc.freeze()
        gc.enable()


def serve(
    listener: socket.socket | None = None,
    load: Callable[[], Main] = _load_cloud_init,
    idle: float = IDLE_S,
    listing: str = READ_AHEAD,
) -> int:
    """Load cloud-init once, then run stages until the last one has run."""
    import socket

    if listener is None:
        listener = socket.socket(fileno=LISTEN_FD)
    listener.settimeout(idle)
    _nice(IMPORT_NICE)
    reader = _start_read_ahead(listing)
    main = _import(load)
    _nice(0)  # the stages, and what they start, run at the usual priority
    if reader is not None:  # done by now; if it is stuck on the disk, no stage waits for it
        os.waitpid(reader, os.WNOHANG)
    if main is None:
        return _refuse_all(listener)
    while True:
        argv = _serve_one(listener, main)
        if argv is None or argv[-2:] == LAST_STAGE:
            return 0


def stage(argv: list[str], path: str = SOCKET, fallback: str = FALLBACK) -> int:
    """Run one cloud-init stage through the server, or by itself when no
    server takes it (none listening, or one that could not load cloud-init)."""
    # The C modules under socket.send_fds: see the module docstring for why.
    import _socket
    from array import array

    conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    try:
        conn.connect(path)
        streams = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, array("i", [0, 1, 2]))]
        conn.sendmsg([encode_request(argv, dict(os.environ))], streams)
        started = conn.recv(64) == _STARTED
    except OSError:
        started = False
    if not started:
        conn.close()
        os.execv(fallback, [fallback, *argv])
    try:
        answer = conn.recv(64)
    except OSError:
        answer = b""
    conn.close()
    if not answer:
        print("cloud-init-preload: the stage's process vanished", file=sys.stderr)
        return 1
    code = int(answer)
    if code < 0:  # the stage died of a signal: so does this process, as systemd expects
        import signal

        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(serve())
    if sys.argv[1:2] == ["stage"]:
        sys.exit(stage(sys.argv[2:]))
    if sys.argv[1:2] == ["record"] and len(sys.argv) == 3:
        sys.exit(record(sys.argv[2]))
    sys.exit("usage: cloud-init-preload serve | stage CLOUD-INIT-ARGS... | record FILE")
