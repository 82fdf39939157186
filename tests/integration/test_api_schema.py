"""Schemathesis generates requests from the OpenAPI document: no input,
however odd, may make the server fail (5xx). Kept small to stay fast."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from slipway.adapters.definitions.loader import LoadedDefinition
from tests.conftest import WebWorld

EXAMPLES_PER_OPERATION = 30


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


def test_no_generated_request_makes_the_server_fail(
    examples: list[LoadedDefinition], database_url: str
) -> None:
    world = WebWorld(examples, dashboard=False, database_url=database_url)
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app)
    # As alice, who owns modules, so that requests get past authentication.
    headers = world.headers("alice")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # The event stream follows a run until it ends: it has no answer to check.
    operations = [op for op in operations if not op.path.endswith("/events")]

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def no_server_error(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=[not_a_server_error])

        no_server_error()
    assert world.engine is not None
    world.engine.dispose()
