"""The dashboard in Debian's chromium against the real ``slipway serve`` and a
real QEMU machine, as a new user meets them: set up with the command line, log
in with the admin password the server prints, find debian-12, deploy it on the
local cloud, follow the run to ready, then terminate it.

One machine only: under TCG a boot takes 40 s on an idle host and several
minutes on a loaded two-core one.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS
from tests.qemu_support import qemu_pids

READY_TIMEOUT_MS = 8 * 60_000
TERMINATED_TIMEOUT_MS = 2 * 60_000


def _tool_missing() -> str | None:
    for tool in ("qemu-system-x86_64", "qemu-img", "ssh"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


TOOL_MISSING = _tool_missing()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(TOOL_MISSING is not None, reason=str(TOOL_MISSING)),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A data folder set up through the command line, and ``slipway serve`` on it."""

    data: Path
    env: dict[str, str]
    log: Path
    url: str = ""
    admin_password: str = ""
    process: subprocess.Popen[bytes] | None = None
    runs: list[str] = field(default_factory=list)

    def cli(self, *args: str, timeout: float = 300) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "slipway", *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def start(self) -> None:
        port = _free_port()
        with self.log.open("wb") as log:  # the child keeps its own copy
            self.process = subprocess.Popen(
                [sys.executable, "-m", "slipway", "serve", "--port", str(port)],
                env=self.env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while "Uvicorn running" not in self.printed():
            assert self.process.poll() is None, self.printed()
            assert time.monotonic() < deadline, self.printed()
            time.sleep(0.2)
        password = re.search(r"created the admin (\S+) with password (\S+)", self.printed())
        assert password, self.printed()
        assert password[1] == "admin"
        self.admin_password = password[2]
        self.url = f"http://127.0.0.1:{port}"

    def printed(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def state(self, run_id: str) -> str:
        return str(json.loads(self.cli("run", "show", run_id, "--output", "json"))["state"])


@pytest.fixture
def server(built_image: Path, tmp_path: Path) -> Iterator[Server]:
    """A fresh data folder with the base image and the examples, as scripts/demo
    makes one, served by ``slipway serve``. Whatever happens, no run, machine
    or server is left behind."""
    data = tmp_path / "data"
    env = {
        **os.environ,
        "SLIPWAY_DATA_DIR": str(data),
        "SLIPWAY_USER": "alice",
        "SLIPWAY_CONFIG": str(tmp_path / "none.toml"),
        "COLUMNS": "200",
    }
    for key in ("SLIPWAY_DATABASE_URL", "SLIPWAY_QUEUE_URL", "SLIPWAY_HOST", "SLIPWAY_PORT"):
        env.pop(key, None)
    served = Server(data, env, tmp_path / "serve.log")
    served.cli("image", "import", str(built_image), "--name", "debian-12-minimal")
    served.cli("import", "examples")
    try:
        served.start()
        yield served
    finally:
        try:
            for run_id in served.runs:
                with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                    if served.state(run_id) not in ("terminated", "cancelled"):
                        served.cli("terminate", run_id, timeout=120)
        finally:
            served.stop()
            print(served.printed()[-8000:])  # shown when the test fails
            for pid in qemu_pids(data):  # never leave a machine behind, even on failure
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)


def test_a_new_user_deploys_debian_on_a_real_local_vm_and_terminates_it(server: Server) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{server.url}/catalog")
            page.get_by_role("link", name="Log in").click()
            page.get_by_label("User name").fill("admin")
            page.get_by_label("Password").fill(server.admin_password)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Catalog")).to_be_visible()

            results = page.locator("#results")
            expect(results).to_contain_text("examples/images/ubuntu-24.04")
            page.get_by_role("searchbox", name="Search").fill("debian-12")
            expect(results).not_to_contain_text("ubuntu")
            debian = results.get_by_role("link", name="examples/images/debian-12", exact=True)
            expect(debian).to_be_visible()
            debian.click()
            expect(page.get_by_role("heading", name="On each cloud")).to_be_visible()

            page.get_by_role("button", name="Deploy…").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible()
            dialog.get_by_label("Cloud").select_option("local")
            expect(dialog.locator(".flavor")).to_contain_text("small · 1 CPU · 1 GB RAM")
            dialog.get_by_role("button", name="Deploy on local").click()
            page.wait_for_url("**/runs/*")
            run_id = page.url.rsplit("/", 1)[-1]
            server.runs.append(run_id)
            expect(page.get_by_role("heading", name=f"Run {run_id}")).to_be_visible()

            live = page.locator("#run-live")
            state = live.locator("#state-title")
            # A failed run ends the wait at once; the page says why.
            expect(state).to_have_text(
                re.compile(r"State: (ready|failed|cancelled)"), timeout=READY_TIMEOUT_MS
            )
            assert state.inner_text() == "State: ready", live.inner_text()
            ssh = live.locator("a[href^='ssh://']")
            expect(ssh).to_have_text(re.compile(r"^ssh://debian@127\.0\.0\.1:\d+$"))
            expect(ssh).to_have_attribute("href", re.compile(r"^ssh://debian@127\.0\.0\.1:\d+$"))
            expect(live.locator(".guest")).to_contain_text("The guest sees 1 CPU and 0.")
            assert len(qemu_pids(server.data)) == 1
            assert server.cli("ssh", run_id, "--", "id", "-un").strip() == "debian"

            page.once("dialog", lambda confirm: confirm.accept())
            page.get_by_role("button", name="Terminate").click()
            expect(state).to_contain_text("terminated", timeout=TERMINATED_TIMEOUT_MS)
            expect(live).not_to_have_attribute("hx-trigger", re.compile("."))  # polling ended
            expect(page.get_by_role("button", name="Terminate")).to_have_count(0)
            assert qemu_pids(server.data) == []
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
            expect(page.locator("#runs-table")).to_contain_text(run_id)
            expect(page.locator("#runs-table")).to_contain_text("terminated")
        finally:
            browser.close()
