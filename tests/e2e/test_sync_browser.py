"""The Sync page in Debian's chromium: after a sync where one image's file
had the wrong checksum, an administrator sees the subscription failing with
the image's error, presses Sync now and is told a worker takes it, then
opens the subscription's images.
Screenshots go where ``test_dashboard_browser.py`` puts them."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway import bootstrap
from slipway.entrypoints.api.app import create_app
from tests.e2e.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, shots
from tests.sync_world import SyncWorld, qcow2_bytes

__all__ = ["shots"]  # the fixture, shared

PASSWORD = "a long browser password"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        shutil.which("qemu-img") is None, reason="no qemu-img (scripts/setup installs it)"
    ),
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    import uvicorn

    world = SyncWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}")
    good = world.image("debian-12", qcow2_bytes(tmp_path, "debian-12"), title="Debian 12")
    bad = world.image("ubuntu-24.04", qcow2_bytes(tmp_path, "ubuntu"), title="Ubuntu 24.04")
    world.server.files["/files/ubuntu-24.04.qcow2"] = qcow2_bytes(tmp_path, "tamper")[: bad.size]
    world.publish(good, bad)
    world.subscribe("fedcloud-site")
    world.sync().run("fedcloud-site")
    bootstrap.identity_service(world.settings).set_password("admin", "admin", PASSWORD)
    app = create_app(bootstrap.web_services(world.settings))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    world.close()


def test_an_operator_sees_a_failing_subscription_and_syncs_it_now(served: str, shots: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{served}/login?next=/sync")
            page.get_by_label("User name").fill("admin")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Sync", exact=True)).to_be_visible()
            expect(page.get_by_text("failing: 1 image(s)")).to_be_visible()
            expect(page.get_by_text("its SHA-512 is")).to_be_visible()
            page.get_by_role("button", name="Sync fedcloud-site now").click()
            expect(page.get_by_text("a worker syncs it within seconds")).to_be_visible()
            page.screenshot(path=shots / "sync.png", full_page=True)
            page.get_by_role("link", name="fedcloud-site").click()
            expect(page.get_by_role("heading", name="Images")).to_be_visible()
            expect(page.get_by_role("rowheader", name="Debian 12")).to_be_visible()
            page.screenshot(path=shots / "sync-subscription.png", full_page=True)
            page.get_by_role("link", name="1", exact=True).click()
            expect(page.get_by_role("heading", name="Sync 1 of fedcloud-site")).to_be_visible()
        finally:
            browser.close()
