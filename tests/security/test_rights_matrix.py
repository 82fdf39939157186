"""What one may not view does not exist for them: bob, a second user, asks
every endpoint and dashboard page that takes a module name or a run id about
alice's private module and alice's run, and gets exactly the answer a name
or id that does not exist gets — same status, same body but for the name."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import WebWorld
from tests.integration.test_dashboard_pages import login

HIDDEN_MODULE, MISSING_MODULE = "alice/private", "alice/nothing"
MISSING_RUN = "000000000000"
HTML = {"Accept": "text/html"}


@dataclass(frozen=True)
class Probe:
    """One request about ``{module}`` or ``{run}``: path, and JSON body or form."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    dashboard: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def request(self, client: TestClient, headers: dict[str, str], csrf: str, **names: str) -> Any:
        def fill(text: str) -> str:
            for key, value in names.items():
                text = text.replace("{" + key + "}", value)
            return text

        kwargs: dict[str, Any] = {"headers": {**headers, **(HTML if self.dashboard else {})}}
        if self.body is not None:
            kwargs["json"] = json.loads(fill(json.dumps(self.body)))
        if self.form is not None:
            kwargs["data"] = {k: fill(v) for k, v in {**self.form, "csrf_token": csrf}.items()}
        return client.request(self.method, fill(self.path), follow_redirects=False, **kwargs)


# Every endpoint and page that names a module or a run.
MODULE_PROBES = [
    Probe("GET", "/api/modules/{module}"),
    Probe("GET", "/api/modules/{module}@1"),
    Probe("GET", "/api/modules/{module}/-/versions"),
    Probe("GET", "/api/modules/{module}/-/resolved"),
    Probe("GET", "/api/modules/{module}/-/resolved?cloud=local"),
    Probe("GET", "/api/modules/{module}/-/diff"),
    Probe("GET", "/api/modules/{module}/-/diff?from=1&to=1"),
    Probe("POST", "/api/modules/{module}/-/copy", body={"destination": "bob/copy"}),
    Probe("PUT", "/api/modules/{module}/-/rights", body={"public_rights": ["view"]}),
    Probe("POST", "/api/runs", body={"module": "{module}", "cloud": "local"}),
    Probe("GET", "/images/{module}", dashboard=True),
    Probe("GET", "/images/{module}/-/deploy", dashboard=True),
    Probe("GET", "/images/{module}/-/diff?from=1&to=1", dashboard=True),
    Probe("POST", "/images/{module}/-/copy", form={"destination": "bob/copy"}, dashboard=True),
    Probe("POST", "/runs", form={"module": "{module}", "cloud": "local"}, dashboard=True),
]
RUN_PROBES = [
    Probe("GET", "/api/runs/{run}"),
    Probe("POST", "/api/runs/{run}/terminate"),
    Probe("GET", "/api/runs/{run}/events"),
    Probe("GET", "/runs/{run}", dashboard=True),
    Probe("GET", "/runs/{run}?part=live", dashboard=True),
    Probe("POST", "/runs/{run}/terminate", form={}, dashboard=True),
]


def label(probe: Probe) -> str:
    return f"{probe.method} {probe.path}"


@pytest.fixture
def alices_run(client: TestClient, web_world: WebWorld) -> str:
    made = client.post(
        "/api/runs",
        json={"module": HIDDEN_MODULE, "cloud": "local"},
        headers=web_world.headers("alice"),
    )
    assert made.status_code == 201, made.text
    run_id: str = made.json()["id"]
    return run_id


@pytest.fixture
def bob(client: TestClient) -> Iterator[tuple[TestClient, str]]:
    """Bob's browser, logged in: his session serves the API and the pages alike."""
    csrf = login(client, "bob")
    yield client, csrf


def same_answer(hidden: Any, missing: Any, swap: tuple[str, str]) -> None:
    assert hidden.status_code == missing.status_code, (hidden.text, missing.text)
    assert hidden.status_code in (404, 422), hidden.text
    assert hidden.headers["content-type"] == missing.headers["content-type"]
    assert hidden.text == missing.text.replace(*swap)


@pytest.mark.parametrize("probe", MODULE_PROBES, ids=label)
def test_a_private_module_answers_as_a_missing_one_everywhere(
    bob: tuple[TestClient, str], probe: Probe
) -> None:
    client, csrf = bob
    headers = {"X-CSRF-Token": csrf}
    hidden = probe.request(client, headers, csrf, module=HIDDEN_MODULE)
    missing = probe.request(client, headers, csrf, module=MISSING_MODULE)
    same_answer(hidden, missing, (MISSING_MODULE, HIDDEN_MODULE))


@pytest.mark.parametrize("probe", RUN_PROBES, ids=label)
def test_a_run_of_someone_else_answers_as_a_missing_one_everywhere(
    bob: tuple[TestClient, str], alices_run: str, probe: Probe
) -> None:
    client, csrf = bob
    headers = {"X-CSRF-Token": csrf}
    hidden = probe.request(client, headers, csrf, run=alices_run)
    missing = probe.request(client, headers, csrf, run=MISSING_RUN)
    same_answer(hidden, missing, (MISSING_RUN, alices_run))


def test_the_refusals_name_nothing_but_what_was_asked(bob: tuple[TestClient, str]) -> None:
    client, _ = bob
    answer = client.get(f"/api/modules/{HIDDEN_MODULE}")
    body = answer.json()
    assert answer.status_code == 404
    assert re.fullmatch(rf"module {HIDDEN_MODULE} does not exist", body["detail"])
    assert "alice" not in body.get("hint", "") and "owner" not in json.dumps(body)
