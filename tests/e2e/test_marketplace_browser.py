"""The marketplace in Debian's chromium: an author registers a stored image
from the Marketplace page, a VO manager endorses and publishes it from the
VO's page, and the published list is there for anybody to fetch.
Screenshots go where ``test_dashboard_browser.py`` puts them."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway import bootstrap
from tests.e2e.test_dashboard_browser import CHROMIUM, CHROMIUM_ARGS, _free_port, shots
from tests.market_world import VO, MarketWorld, stored_image

__all__ = ["shots"]  # the fixture, shared

PASSWORD = "a long browser password"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, MarketWorld]]:
    import uvicorn

    world = MarketWorld(tmp_path, f"sqlite:///{tmp_path / 'slipway.db'}")
    stored_image(world.data_dir, "web-1")
    identity = bootstrap.identity_service(world.settings)
    for user in ("alice", "bob"):
        identity.set_password("admin", user, PASSWORD)
    world.market("admin").create_vo(VO, "bob", title="Example VO")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(world.client.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", world
    server.should_exit = True
    thread.join(timeout=10)


def test_author_and_manager_do_their_part_in_the_browser(
    served: tuple[str, MarketWorld], shots: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, _ = served
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            author = browser.new_page(viewport={"width": 1280, "height": 800})
            _log_in(author, base, "alice")
            author.goto(f"{base}/marketplace")
            author.get_by_text("Register a version from the local image store").click()
            author.get_by_label("Appliance", exact=True).fill("alice/web")
            author.get_by_label("Version", exact=True).fill("1.0")
            author.get_by_label("Stored image").select_option("web-1")
            author.get_by_label("Title (a new appliance)").fill("Web server")
            author.get_by_label("Public", exact=True).check()
            author.get_by_role("button", name="Register").click()
            expect(author.get_by_role("heading", name="alice/web")).to_be_visible()
            expect(author.get_by_text("image test: passed, SSH after 42 s")).to_be_visible()
            author.screenshot(path=shots / "appliance.png", full_page=True)

            manager = browser.new_page(viewport={"width": 1280, "height": 800})
            _log_in(manager, base, "bob")
            manager.goto(f"{base}/vos/{VO}")
            manager.get_by_label("Endorse an appliance version").fill("alice/web@1.0")
            manager.get_by_role("button", name="Endorse").click()
            expect(manager.locator("table").first).to_contain_text("alice/web")
            manager.get_by_label("Comment").fill("first list")
            manager.get_by_role("button", name="Sign and publish the draft").click()
            expect(manager.get_by_text("first list")).to_be_visible()
            manager.screenshot(path=shots / "vo.png", full_page=True)

            anybody = browser.new_page(viewport={"width": 1280, "height": 800})
            anybody.goto(f"{base}/marketplace?vo={VO}")
            expect(anybody.get_by_role("link", name="alice/web")).to_be_visible()
            anybody.screenshot(path=shots / "marketplace.png", full_page=True)
        finally:
            browser.close()
    with urllib.request.urlopen(f"{base}/vo/{VO}/image.list", timeout=10) as answer:
        assert b"multipart/signed" in answer.read()


def _log_in(page: object, base: str, user: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto(f"{base}/login")
    page.get_by_label("User name").fill(user)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Catalog")).to_be_visible()
