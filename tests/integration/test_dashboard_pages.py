"""The dashboard's pages over HTTP: log-in with CSRF, rights on pages, the
catalog's search, the image page, the Deploy dialog and the copy form."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.conftest import WebWorld

HTML = {"Accept": "text/html"}


@pytest.fixture
def browser(web_world: WebWorld) -> Iterator[TestClient]:
    with TestClient(web_world.app, raise_server_exceptions=False, headers=HTML) as client:
        yield client


def login(client: TestClient, user: str, password: str = WebWorld.PASSWORD) -> str:
    """Log in through the form; returns the page's CSRF token."""
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    response = client.post(
        "/login",
        data={"csrf_token": token[1], "username": user, "password": password, "next": "/catalog"},
    )
    assert response.status_code == 200, response.text  # followed the redirect
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.text)
    assert found
    return found[1]


def test_anonymous_visitors_see_public_images_and_can_log_in(browser: TestClient) -> None:
    page = browser.get("/catalog?q=alice")
    assert "alice/public" in page.text and "alice/private" not in page.text
    assert 'href="/login' in page.text
    assert browser.get("/images/alice/private").status_code == 404


def test_a_wrong_password_or_a_missing_csrf_cookie_logs_nobody_in(browser: TestClient) -> None:
    form = browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token
    wrong = browser.post(
        "/login", data={"csrf_token": token[1], "username": "bob", "password": "x"}
    )
    assert wrong.status_code == 401 and "Wrong user name or password" in wrong.text
    browser.cookies.clear()
    forged = browser.post(
        "/login", data={"csrf_token": "x", "username": "bob", "password": WebWorld.PASSWORD}
    )
    assert forged.status_code == 401 and "expired" in forged.text
    assert "slipway_session" not in browser.cookies


def test_after_log_in_the_catalog_searches_and_filters(browser: TestClient) -> None:
    login(browser, "alice")
    page = browser.get("/catalog?q=alice")
    assert "alice/private" in page.text
    partial = browser.get(
        "/catalog?q=alma&os=almalinux", headers={"HX-Request": "true", "HX-Target": "results"}
    )
    assert "examples/images/almalinux-9" in partial.text and "<header" not in partial.text
    assert "1 match" in partial.text
    assert browser.get("/catalog?cloud=mars").status_code == 422


def test_the_image_page_shows_clouds_flavors_hierarchy_and_versions(browser: TestClient) -> None:
    login(browser, "alice")
    page = browser.get("/images/examples/images/ubuntu-22.04-large").text
    for expected in ("On each cloud", "Where each value comes from", "Versions", "Deploy on"):
        assert expected in page
    assert "examples/images/ubuntu-22.04@1" in page  # a value inherited from the parent
    assert "lacks 6 GB RAM" in page  # the named instance type is too small
    assert "Security groups" in page


def test_the_deploy_dialog_previews_the_flavor_of_the_chosen_cloud(browser: TestClient) -> None:
    login(browser, "alice")
    preview = browser.get(
        "/images/examples/images/debian-12/-/deploy?cloud=ultimum",
        headers={"HX-Request": "true", "HX-Target": "deploy-preview"},
    )
    assert "<strong>Basic</strong>" in preview.text
    assert "opens every port" in preview.text  # the managed group's warning


def test_the_deploy_dialog_lists_clouds_in_the_same_order_on_the_page_and_on_change(
    browser: TestClient,
) -> None:
    login(browser, "alice")
    page = browser.get("/images/examples/images/debian-12").text
    options = re.findall(r'<option value="([^"]+)"[^>]*>', page.split('id="deploy-dialog"')[1])
    assert options == sorted(options) and len(options) > 1
    assert re.search(rf'<option value="{options[0]}" selected>', page)


def test_confirming_a_deploy_needs_csrf_and_opens_the_run_page(browser: TestClient) -> None:
    csrf = login(browser, "alice")
    form = {"module": "examples/images/debian-12", "cloud": "local"}
    assert browser.post("/runs", data=form).status_code == 403
    answer = browser.post("/runs", data={**form, "csrf_token": csrf})
    assert answer.status_code == 200 and "/runs/" in str(answer.url)
    assert "pending" in answer.text


def test_copy_from_the_image_page_makes_a_private_copy(browser: TestClient) -> None:
    csrf = login(browser, "bob")
    copied = browser.post(
        "/images/alice/public/-/copy", data={"csrf_token": csrf, "destination": "bob/mine"}
    )
    assert copied.status_code == 200 and str(copied.url).endswith("/images/bob/mine")
    bad = browser.post("/images/alice/public/-/copy", data={"csrf_token": csrf, "destination": "/"})
    assert bad.status_code == 422


def test_clouds_page_and_log_out(browser: TestClient) -> None:
    csrf = login(browser, "carol")
    page = browser.get("/clouds").text
    assert "exoscale-ch-gva" in page and "Standard Plus" in page
    out = browser.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 200 and "Log in to Slipway" in out.text
    assert "0 matches" in browser.get("/catalog?q=alice/team").text
