"""The dashboard in Debian's chromium, driven by Playwright: log in, search
the catalog, open debian-12, open the Deploy dialog and see the flavor.

Screenshots of each page go to ``$SLIPWAY_SCREENSHOTS`` when set
(``scripts/screenshots`` sets it to ``docs/screenshots``), else to a
temporary folder."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from slipway.adapters.definitions.loader import LoadedDefinition, load_text
from tests.conftest import REPO, WebWorld
from tests.integration.test_api_runs import drive

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="no /usr/bin/chromium (apt-get install chromium)"
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def world(examples: list[LoadedDefinition]) -> WebWorld:
    return WebWorld(examples)


@pytest.fixture
def served(world: WebWorld, examples: list[LoadedDefinition]) -> Iterator[str]:
    """The dashboard on a free local port, in a thread of this process."""
    import uvicorn

    # A second version, so the page has a diff to show.
    debian = next(e for e in examples if e.name == "examples/images/debian-12")
    text = (REPO / "examples/images/debian-12.yaml").read_text()
    text = text.replace("image build", "image build from examples/recipes")
    changed = load_text(text, debian.file, debian.name)
    world.services.catalog("admin").import_files([changed], "say which recipe builds it")
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(world.app, host="127.0.0.1", port=port, log_level="warning")
    )
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


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SLIPWAY_SCREENSHOTS") or tmp_path)
    if not folder.is_absolute():
        folder = REPO / folder
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_log_in_find_debian_deploy_it_and_follow_the_run(
    served: str, world: WebWorld, shots: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{served}/catalog")
            page.get_by_role("link", name="Log in").click()
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill(WebWorld.PASSWORD)
            page.screenshot(path=shots / "login.png")
            page.get_by_role("button", name="Log in").click()
            expect(page.get_by_role("heading", name="Catalog")).to_be_visible()

            page.get_by_role("searchbox", name="Search").fill("debian")
            expect(page.get_by_text("4 matches")).to_be_visible()
            page.get_by_role("searchbox", name="Search").fill("")
            page.get_by_role("combobox", name="Cloud").select_option("local")
            expect(page.locator("#results")).to_contain_text("examples/images/debian-12")
            page.get_by_role("combobox", name="Cloud").select_option("")
            expect(page.locator("#results")).to_contain_text("examples/apps/nginx")
            page.screenshot(path=shots / "catalog.png", full_page=True)

            page.get_by_role("link", name="examples/images/debian-12", exact=True).click()
            expect(page.get_by_role("heading", name="On each cloud")).to_be_visible()
            page.get_by_role("button", name="Changes from 1").click()
            expect(page.locator("#diff-2")).to_contain_text("description")
            page.screenshot(path=shots / "image.png", full_page=True)

            page.get_by_role("button", name="Deploy…").click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible()
            dialog.get_by_label("Cloud").select_option("ultimum")
            expect(dialog.locator(".flavor")).to_contain_text("Basic")
            expect(dialog.get_by_role("button", name="Deploy on ultimum")).to_be_enabled()
            page.screenshot(path=shots / "deploy-dialog.png")
            dialog.get_by_role("button", name="Deploy on ultimum").click()
            # This test's ultimum cannot be reached: the cloud's own words are shown.
            expect(dialog.get_by_role("alert")).to_contain_text("unreachable")
            dialog.get_by_label("Cloud").select_option("local")
            expect(dialog.locator(".flavor")).to_contain_text("small")
            dialog.get_by_role("button", name="Deploy on local").click()
            page.wait_for_url("**/runs/*")
            run_id = page.url.rsplit("/", 1)[-1]
            expect(page.get_by_role("heading", name=f"Run {run_id}")).to_be_visible()
            drive(world, run_id)  # what the server's workers do
            expect(page.locator("#run-live")).to_contain_text("ssh://debian@", timeout=15_000)
            expect(page.locator("#run-live")).to_contain_text("The guest sees 2 CPU")
            page.screenshot(path=shots / "run.png", full_page=True)
            page.once("dialog", lambda confirm: confirm.accept())
            page.get_by_role("button", name="Terminate").click()
            expect(page.locator("#run-live")).to_contain_text("terminating")
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Runs").click()
            expect(page.locator("#runs-table")).to_contain_text(run_id)
            page.screenshot(path=shots / "runs.png", full_page=True)

            page.get_by_role("link", name="Clouds").click()
            expect(page.get_by_role("heading", name="exoscale-ch-gva")).to_be_visible()
            page.get_by_text("6 flavors").click()
            expect(page.get_by_role("rowheader", name="Standard Plus")).to_be_visible()
            page.screenshot(path=shots / "clouds.png", full_page=True)

            phone = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True)
            phone.context.add_cookies(page.context.cookies())
            phone.goto(f"{served}/images/examples/images/debian-12")
            expect(phone.get_by_role("button", name="Deploy…")).to_be_visible()
            phone.screenshot(path=shots / "image-phone.png")
            phone.goto(f"{served}/catalog")
            phone.screenshot(path=shots / "catalog-phone.png")
        finally:
            browser.close()
