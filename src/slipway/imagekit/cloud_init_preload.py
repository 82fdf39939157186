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
    depends on this speed-up to work.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable

__all__ = ["FALLBACK", "IDLE_S", "LISTEN_FD", "SOCKET", "serve", "stage"]

SOCKET = "/run/slipway-cloud-init.sock"
FALLBACK = "/usr/bin/cloud-init"
LISTEN_FD = 3  # the first socket systemd passes (sd_listen_fds)
IDLE_S = 1800.0
"""Seconds the server waits for a stage before it gives up and ends."""
IMPORT_NICE = -10
LAST_STAGE = ["modules", "--mode=final"]
_STARTED = b"started"
_MAX_REQUEST = 1 << 20  # bytes: the arguments and the environment of a stage

Main = Callable[[list[str]], object]


def _nice(value: int) -> None:
    """Set this process's scheduling priority: the import runs beside early
    boot's many small units and is what the first stage waits for."""
    with contextlib.suppress(OSError):
        os.setpriority(os.PRIO_PROCESS, 0, value)


def _load_cloud_init() -> Main:
    module = importlib.import_module("cloudinit.cmd.main")
    main: Main = module.main
    return main


def _run_in_child(main: Main, argv: list[str], env: dict[str, str], fds: list[int]) -> None:
    """In the forked child: become the stage's process, run it, exit with its status."""
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
    data, fds, _, _ = socket.recv_fds(conn, _MAX_REQUEST, 3)
    try:
        request = json.loads(data)
        argv = [str(a) for a in request["argv"]]
        env = {str(k): str(v) for k, v in request["env"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        argv = []
    if len(fds) != 3 or not argv:
        for fd in fds:
            os.close(fd)
        return None
    return argv, env, fds


def _serve_one(listener: socket.socket, main: Main) -> list[str] | None:
    """Run one stage; returns its arguments ([] for a bad request), or None
    when no stage came in time."""
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
    while True:
        try:
            conn, _ = listener.accept()
        except socket.timeout:  # noqa: UP041 - not yet TimeoutError on Python 3.9
            return 1
        conn.close()


def serve(
    listener: socket.socket | None = None,
    load: Callable[[], Main] = _load_cloud_init,
    idle: float = IDLE_S,
) -> int:
    """Load cloud-init once, then run stages until the last one has run."""
    if listener is None:
        listener = socket.socket(fileno=LISTEN_FD)
    listener.settimeout(idle)
    _nice(IMPORT_NICE)
    try:
        main: Main | None = load()
    except Exception:
        traceback.print_exc()
        main = None
    _nice(0)  # the stages, and what they start, run at the usual priority
    if main is None:
        return _refuse_all(listener)
    while True:
        argv = _serve_one(listener, main)
        if argv is None or argv[-2:] == LAST_STAGE:
            return 0


def stage(argv: list[str], path: str = SOCKET, fallback: str = FALLBACK) -> int:
    """Run one cloud-init stage through the server, or by itself when no
    server takes it (none listening, or one that could not load cloud-init)."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(path)
        request = json.dumps({"argv": argv, "env": dict(os.environ)}).encode()
        socket.send_fds(conn, [request], [0, 1, 2])
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
        signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    return code


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        sys.exit(serve())
    if sys.argv[1:2] == ["stage"]:
        sys.exit(stage(sys.argv[2:]))
    sys.exit("usage: cloud-init-preload serve | stage CLOUD-INIT-ARGS...")
