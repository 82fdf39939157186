"""``slipway serve``, ``slipway token create`` and ``slipway user password``
through the real command, as a new user meets them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2 as httpx

SLIPWAY = [sys.executable, "-m", "slipway"]


def _env(data: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(data),
        "SLIPWAY_USER": "alice",
        "SLIPWAY_CONFIG": str(data / "none.toml"),
        "COLUMNS": "200",
    }
    env.pop("SLIPWAY_DATABASE_URL", None)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _serve(data: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    """Start ``slipway serve``; return it and what it printed before listening."""
    process = subprocess.Popen(
        [*SLIPWAY, "serve", "--port", str(port)],
        env=_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if "Uvicorn running" in line or not line:
            break
    return process, "".join(lines)


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=20)
    if process.stdout is not None:
        process.stdout.close()


def test_serve_prints_the_admin_once_and_tokens_work(tmp_path: Path) -> None:
    def cli(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run(
            [*SLIPWAY, *args],
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            input=stdin,
            timeout=120,
            check=True,
        )
        return done.stdout

    token = cli("token", "create", "--name", "ci").splitlines()[1].strip()
    assert token.startswith("slw_") and "ci" in cli("token", "list")
    port = _free_port()
    process, printed = _serve(tmp_path, port)
    try:
        assert f"http://localhost:{port}/login" in printed
        password = re.search(r"admin admin with password (\S+)", printed)
        assert password, printed
        base = f"http://127.0.0.1:{port}"
        me = httpx.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["user"] == "alice"
        login = httpx.get(f"{base}/login")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert csrf
        answer = httpx.post(
            f"{base}/login",
            data={"csrf_token": csrf[1], "username": "admin", "password": password[1]},
            cookies=login.cookies,
        )
        assert answer.status_code == 303 and "slipway_session" in answer.cookies
    finally:
        _stop(process)
    cli("user", "password", "alice", "--stdin", stdin="alice's password\n")
    process, printed = _serve(tmp_path, port)
    _stop(process)
    assert "password" not in printed.split("REST API")[1]
