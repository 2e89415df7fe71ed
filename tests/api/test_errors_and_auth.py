"""Every non-success answer has one JSON shape, and no route works without a valid API key."""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.api.conftest import Account

PROTECTED = [
    ("POST", "/v1/assets"),
    ("GET", "/v1/assets/00000000-0000-0000-0000-000000000000"),
    ("POST", "/v1/batches"),
    ("GET", "/v1/batches"),
    ("GET", "/v1/batches/00000000-0000-0000-0000-000000000000"),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000"),
    ("GET", "/v1/jobs/00000000-0000-0000-0000-000000000000/video"),
    ("GET", "/v1/credits"),
]


def assert_error_shape(body: dict[str, Any], code: str) -> None:
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_a_missing_api_key_is_401_with_how_to_get_one(
    client: TestClient, method: str, path: str
) -> None:
    answer = client.request(method, path)
    assert answer.status_code == 401
    assert_error_shape(answer.json(), "unauthorized")
    assert "apikey create" in answer.json()["error"]["message"]
    assert answer.headers["www-authenticate"] == "Bearer"


def test_an_unknown_api_key_is_401(client: TestClient) -> None:
    answer = client.get("/v1/batches", headers={"Authorization": "Bearer nb_not-a-key"})
    assert answer.status_code == 401
    assert "not valid" in answer.json()["error"]["message"]


def test_a_key_in_another_scheme_is_401(client: TestClient, account: Account) -> None:
    answer = client.get("/v1/batches", headers={"Authorization": f"Basic {account.key}"})
    assert answer.status_code == 401


def test_an_unknown_route_is_a_json_404(client: TestClient) -> None:
    answer = client.get("/v1/nothing-here")
    assert answer.status_code == 404
    assert_error_shape(answer.json(), "not_found")


def test_a_wrong_method_is_a_json_405(client: TestClient) -> None:
    answer = client.delete("/healthz")
    assert answer.status_code == 405
    assert_error_shape(answer.json(), "method_not_allowed")


def test_a_405_lists_every_method_of_the_path_in_allow(client: TestClient) -> None:
    answer = client.put("/v1/schedules/3fa85f64-5717-4562-b3fc-2c963f66afa6")
    assert answer.status_code == 405
    assert answer.headers["Allow"] == "DELETE, GET, PATCH"


def test_fastapi_validation_errors_use_the_same_shape(client: TestClient, account: Account) -> None:
    answer = client.get("/v1/batches", params={"limit": 1000}, headers=account.headers)
    assert answer.status_code == 422
    body = answer.json()
    assert_error_shape(body, "validation_error")
    assert body["error"]["details"][0]["loc"] == "query.limit"
    assert body["error"]["message"].startswith("query.limit: ")


def test_an_unhandled_exception_is_a_500_without_internals(settings: Any) -> None:
    from api.app import create_app

    app: FastAPI = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internal detail at /srv/db")

    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get("/boom")
    assert answer.status_code == 500
    assert_error_shape(answer.json(), "internal_error")
    assert "secret" not in answer.text


@pytest.mark.parametrize(
    "path",
    [
        "/v1/batches/not-a-uuid",
        "/v1/batches/not-a-uuid/jobs",
        "/v1/jobs/123",
        "/v1/jobs/%00/events",
        "/v1/assets/x' OR 1=1",
    ],
)
def test_a_malformed_id_in_a_path_is_404(client: TestClient, account: Account, path: str) -> None:
    answer = client.get(path, headers=account.headers)
    assert answer.status_code == 404
    assert_error_shape(answer.json(), "not_found")


def test_healthz_is_always_ok(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database_and_broker(client: TestClient) -> None:
    answer = client.get("/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_readyz_names_the_broker_when_it_is_unreachable(settings: Any) -> None:
    from api.app import create_app

    app = create_app(settings.model_copy(update={"redis_url": "redis://127.0.0.1:1/15"}))
    with TestClient(app) as client:
        answer = client.get("/readyz")
    assert answer.status_code == 503
    assert_error_shape(answer.json(), "not_ready")
    assert "broker" in answer.json()["error"]["message"]
    assert "database" not in answer.json()["error"]["message"]


def test_answers_never_contain_secrets(client: TestClient, account: Account) -> None:
    from core.db import session_scope
    from core.models import Tenant

    with session_scope() as session:
        tenant = session.get(Tenant, account.tenant_id)
        assert tenant is not None
        tenant.backend_token = "nmv_usr_very_secret"
        secret = tenant.webhook_secret
    answers = [
        client.get("/v1/credits", headers=account.headers),
        client.post("/v1/batches", headers=account.headers, json={"items": [{"title": "Mug"}]}),
        client.get("/v1/batches", headers=account.headers),
    ]
    for answer in answers:
        assert answer.status_code < 300
        for value in ("nmv_usr_very_secret", secret, account.key):
            assert value not in answer.text
