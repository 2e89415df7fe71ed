"""The served OpenAPI document is whole: valid, every reference resolves, every error status
names the one error body the server sends."""

from typing import Any

from fastapi.testclient import TestClient
from openapi_spec_validator import validate

from core.states import JobState


def served_document(client: TestClient) -> dict[str, Any]:
    answer = client.get("/openapi.json")
    assert answer.status_code == 200
    document: dict[str, Any] = answer.json()
    return document


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in references(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def test_the_document_passes_the_openapi_validator(client: TestClient) -> None:
    validate(served_document(client))


def test_every_reference_resolves_request_bodies_included(client: TestClient) -> None:
    document = served_document(client)
    schemas = document["components"]["schemas"]
    refs = references(document)
    assert "#/components/schemas/BatchIn" in refs
    assert "#/components/schemas/ScheduleUpdate" in refs
    unresolved = sorted(
        {ref for ref in refs if ref.removeprefix("#/components/schemas/") not in schemas}
    )
    assert unresolved == []


def test_every_error_status_is_documented_with_the_error_body(client: TestClient) -> None:
    document = served_document(client)
    error_body = {"$ref": "#/components/schemas/ErrorBody"}
    for name, operation in operations(document):
        for status, answer in operation["responses"].items():
            content = answer.get("content", {})
            if int(status) >= 400 and "application/json" in content:
                assert content["application/json"]["schema"] == error_body, (name, status)
        if operation.get("security"):
            assert "401" in operation["responses"], name
        assert "500" in operation["responses"], name
    error = document["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "details"}


def test_states_are_enums_and_a_batch_takes_json_or_csv(client: TestClient) -> None:
    document = served_document(client)
    schemas = document["components"]["schemas"]
    assert schemas["JobState"]["enum"] == [state.value for state in JobState]
    jobs = document["paths"]["/v1/batches/{batch_id}/jobs"]["get"]
    (state,) = [parameter for parameter in jobs["parameters"] if parameter["name"] == "state"]
    assert {"$ref": "#/components/schemas/JobState"} in state["schema"]["anyOf"]
    create = document["paths"]["/v1/batches"]["post"]
    assert set(create["requestBody"]["content"]) == {"application/json", "text/csv"}
    assert {"200", "201", "400", "401", "409", "413", "415", "422"} <= set(create["responses"])
