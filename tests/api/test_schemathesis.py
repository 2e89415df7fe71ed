"""Property-based requests generated from the app's own OpenAPI document: whatever a client
sends, the API never answers 500 and every answer matches the schema it publishes."""

from typing import Any

import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance
from schemathesis.core.result import Ok

from tests.api.conftest import Account

EXAMPLES_PER_OPERATION = 15


def test_no_request_makes_a_server_error_or_an_answer_outside_the_schema(
    app: FastAPI, account: Account
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the schema has an operation it cannot test: {result}"
        operations.append(result.ok())
    assert len(operations) > 10, "the schema lists the API's routes"
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def fuzz(case: Any) -> None:
            case.call_and_validate(
                headers=account.headers,
                checks=[not_a_server_error, response_schema_conformance],
            )

        fuzz()
