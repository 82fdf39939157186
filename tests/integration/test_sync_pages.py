"""The dashboard's Sync pages over HTTP, after a real sync of a signed list
onto the local cloud: one good image, one whose file has the wrong
checksum, one whose title is markup. Only administrators see them."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from slipway import bootstrap
from slipway.domain.sync import SyncOutcome, SyncRecord
from slipway.entrypoints.api.app import create_app
from tests.integration.test_dashboard_pages import HTML, login
from tests.sync_world import SyncWorld, qcow2_bytes

PASSWORD = "a long sync-page password"
HOSTILE_TITLE = "<script>alert(1)</script>"


@dataclass
class Synced:
    world: SyncWorld
    client: TestClient
    record: SyncRecord


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synced]:
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (scripts/setup installs it)")
    tmp = tmp_path_factory.mktemp("sync-pages")
    world = SyncWorld(tmp, f"sqlite:///{tmp}/slipway.db")
    good = world.image("alpha", qcow2_bytes(tmp, "alpha"))
    bad = world.image("beta", qcow2_bytes(tmp, "beta"))
    world.server.files["/files/beta.qcow2"] = qcow2_bytes(tmp, "tampered")[: bad.size]
    hostile = world.image("gamma", qcow2_bytes(tmp, "gamma"), title=HOSTILE_TITLE)
    world.publish(good, bad, hostile)
    world.subscribe()
    record = world.sync().run("site")
    assert record.outcome is SyncOutcome.PARTIAL, record.steps
    identity = bootstrap.identity_service(world.settings)
    for user in ("admin", "mallory"):
        identity.set_password("admin", user, PASSWORD)
    app = create_app(bootstrap.web_services(world.settings))
    with TestClient(app, raise_server_exceptions=False, headers=HTML) as client:
        yield Synced(world, client, record)
    world.close()


@pytest.fixture
def browser(synced: Synced) -> Iterator[TestClient]:
    synced.client.cookies.clear()
    yield synced.client
    synced.client.cookies.clear()


def test_the_sync_page_shows_a_failing_subscription_with_the_image_error(
    synced: Synced, browser: TestClient
) -> None:
    login(browser, "admin", PASSWORD)
    page = browser.get("/sync")

    assert page.status_code == 200
    row = page.text.split('<th scope="row">')[1]
    assert '<a href="/sync/site">site</a>' in row
    assert '<td data-label="Cloud">local</td>' in row
    assert "failing: 1 image(s)" in row
    assert "Image beta" in row and "its SHA-512 is" in row  # the verifier's own words
    assert f"/sync/runs/{synced.record.id}" in row and "partial" in row
    assert re.search(r'data-label="List version">1<', row)
    assert 'href="/sync"' in page.text  # in the nav, for an admin


def test_the_subscription_page_shows_settings_images_and_recent_syncs(
    synced: Synced, browser: TestClient
) -> None:
    login(browser, "admin", PASSWORD)
    page = browser.get("/sync/site").text

    assert synced.world.list_url in page
    assert synced.world.endorser_dn in page
    assert "every 3 h" in page and "0 s hidden before deletion" in page
    images = {
        match[1]: match[2]
        for match in re.finditer(
            r'<th scope="row">([^<]+)<br>.*?class="badge image-(\w+)"', page, re.S
        )
    }
    assert images["Image alpha"] == "active"
    assert images["Image beta"] == "failed"
    status = synced.world.sync().status("site")
    (alpha,) = [i for i in status.images if i.title == "Image alpha"]
    assert alpha.native_id and alpha.native_id in page
    assert "its SHA-512 is" in page
    assert f'href="/sync/runs/{synced.record.id}"' in page


def test_the_sync_record_page_lists_every_step(synced: Synced, browser: TestClient) -> None:
    login(browser, "admin", PASSWORD)
    page = browser.get(f"/sync/runs/{synced.record.id}")

    assert page.status_code == 200
    shown = re.findall(r'<tr>\s*<th scope="row">(\w+)</th>', page.text)
    assert shown == [s.step for s in synced.record.steps]
    assert shown[:2] == ["fetch", "verify"]
    assert "step-failed" in page.text and "its SHA-512 is" in page.text
    assert browser.get("/sync/runs/999999").status_code == 404


def test_sync_now_makes_the_subscription_due_and_says_so(
    synced: Synced, browser: TestClient
) -> None:
    csrf = login(browser, "admin", PASSWORD)
    assert browser.post("/sync/site/request", data={}).status_code == 403  # no CSRF token

    answer = browser.post("/sync/site/request", data={"csrf_token": csrf})

    assert answer.status_code == 200 and str(answer.url).endswith("/sync?requested=site")
    assert "a worker syncs it within seconds" in answer.text
    next_at = synced.world.sync().status("site").subscription.next_at
    assert next_at is not None
    assert abs(datetime.now(UTC) - next_at.replace(tzinfo=next_at.tzinfo or UTC)) < timedelta(
        minutes=1
    )
    back = browser.post("/sync/site/request", data={"csrf_token": csrf, "back": "subscription"})
    assert str(back.url).endswith("/sync/site?requested=yes")
    assert "A worker syncs it within seconds" in back.text


def test_a_user_who_is_not_an_administrator_sees_no_sync_at_all(
    synced: Synced, browser: TestClient
) -> None:
    before = synced.world.sync().status("site").subscription.next_at
    csrf = login(browser, "mallory", PASSWORD)

    assert 'href="/sync"' not in browser.get("/catalog").text
    for path in ("/sync", "/sync/site", f"/sync/runs/{synced.record.id}", "/sync/nosuch"):
        answer = browser.get(path)
        assert answer.status_code == 403, path
        assert "Image beta" not in answer.text and "SHA-512" not in answer.text
        assert synced.world.list_url not in answer.text
    refused = browser.post("/sync/site/request", data={"csrf_token": csrf})
    assert refused.status_code == 403
    assert synced.world.sync().status("site").subscription.next_at == before


def test_anonymous_visitors_are_sent_to_log_in(browser: TestClient) -> None:
    answer = browser.get("/sync/site", follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/sync/site"


def test_titles_from_the_list_are_shown_escaped(synced: Synced, browser: TestClient) -> None:
    login(browser, "admin", PASSWORD)
    for path in ("/sync/site", f"/sync/runs/{synced.record.id}"):
        page = browser.get(path).text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
        assert HOSTILE_TITLE not in page, path
