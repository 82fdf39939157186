"""What the security tests share: the command line run in-process, as a user
runs it (exit code, stdout, stderr), on a data folder of its own; the API
in-process on the in-memory store and on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from slipway.adapters.definitions.loader import LoadedDefinition
from tests.conftest import WebWorld


@dataclass(frozen=True)
class Done:
    code: int
    out: str
    err: str


Cli = Callable[..., Done]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Cli:
    """``cli("validate", "x.yaml")``: run ``slipway`` as alice with its data in
    ``tmp_path/data``, from ``tmp_path``."""
    from slipway.entrypoints.cli.app import main

    for name in ("SLIPWAY_DATABASE_URL", "SLIPWAY_QUEUE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLIPWAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("SLIPWAY_CONFIG", str(tmp_path / "none.toml"))
    monkeypatch.setenv("SLIPWAY_USER", "alice")
    monkeypatch.chdir(tmp_path)

    def run(*args: str) -> Done:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["slipway", *args])
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        else:  # pragma: no cover - main() always exits
            code = 0
        captured = capsys.readouterr()
        return Done(code, captured.out, captured.err)

    return run


@pytest.fixture
def client(web_world: WebWorld) -> Iterator[TestClient]:
    """The API and the dashboard in-process, on the in-memory store."""
    with TestClient(web_world.app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(params=["sqlite", "postgres"])
def sql_world(
    request: pytest.FixtureRequest, tmp_path: Path, examples: list[LoadedDefinition]
) -> Iterator[WebWorld]:
    """The served catalog on a real database, where numbers have a size."""
    url = (
        f"sqlite:///{tmp_path / 'api.db'}"
        if request.param == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    world = WebWorld(examples, database_url=url)
    yield world
    assert world.engine is not None
    world.engine.dispose()


@pytest.fixture
def sql_client(sql_world: WebWorld) -> Iterator[TestClient]:
    with TestClient(sql_world.app, raise_server_exceptions=False) as client:
        yield client


def problem(response: Any, status: int) -> dict[str, Any]:
    """The problem document of ``response``, which must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["detail"]
    return body
