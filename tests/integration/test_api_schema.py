"""Schemathesis generates requests from the OpenAPI document: no input,
however odd, may make the server fail (5xx), and every answer is one the
document describes — its status, its content type and its body — whether it
comes to the user who owns modules or to another who owns none. Kept small
to stay fast."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from slipway.adapters.definitions.loader import LoadedDefinition
from tests.conftest import WebWorld

EXAMPLES_PER_OPERATION = 25
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'api.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


# alice owns private, team and public modules; bob owns nothing and may
# view only what is public: each gets past authentication.
@pytest.mark.parametrize("user", ["alice", "bob"])
def test_no_generated_request_fails_or_strays_from_the_document(
    examples: list[LoadedDefinition], database_url: str, user: str
) -> None:
    world = WebWorld(examples, dashboard=False, database_url=database_url)
    schema = schemathesis.openapi.from_asgi("/openapi.json", world.app)
    headers = world.headers(user)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # The world has no runs, so the event stream of any generated id is
    # refused before a stream starts: it is checked like the rest.

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def answers_as_documented(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        answers_as_documented()
    assert world.engine is not None
    world.engine.dispose()


def test_the_document_describes_problems_and_not_fastapis_own_errors(
    examples: list[LoadedDefinition],
) -> None:
    document = WebWorld(examples, dashboard=False).app.openapi()
    assert "HTTPValidationError" not in str(document)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status in ("4XX", "5XX"):
                content = operation["responses"][status]["content"]
                assert content == {
                    "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
                }, (method, path)
