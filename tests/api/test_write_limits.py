"""Per-tenant write limits: a rate and a number running at once, shared through Redis; 429
with Retry-After and the IETF draft's RateLimit fields, other tenants and reads untouched."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Account

BODY = {"items": [{"title": "Mug"}]}


@pytest.fixture(scope="module")
def limited(settings: Any) -> Iterator[TestClient]:
    from api.app import create_app

    app = create_app(
        settings.model_copy(
            update={"write_rate_per_minute": 3, "write_burst": 3, "write_concurrency": 2}
        )
    )
    with TestClient(app) as client:
        yield client


def test_a_tenant_past_its_write_rate_gets_429_with_when_to_come_back(
    limited: TestClient, account: Account, other_account: Account
) -> None:
    answers = [limited.post("/v1/batches", headers=account.headers, json=BODY) for _ in range(4)]
    assert [answer.status_code for answer in answers] == [201, 201, 201, 429]
    assert [answer.headers["RateLimit"] for answer in answers[:3]] == [
        '"writes";r=2;t=0',
        '"writes";r=1;t=0',
        '"writes";r=0;t=0',
    ]
    refused = answers[3]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert "more than 3 writes a minute" in refused.json()["error"]["message"]
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert refused.headers["RateLimit-Policy"] == '"writes";q=3;w=60'
    assert refused.headers["RateLimit"].startswith('"writes";r=0;t=')
    # Reads of the same tenant and writes of another go on.
    assert limited.get("/v1/batches", headers=account.headers).status_code == 200
    theirs = limited.post("/v1/batches", headers=other_account.headers, json=BODY)
    assert theirs.status_code == 201


def test_a_tenant_with_all_its_writes_running_gets_429_until_one_ends(
    limited: TestClient, account: Account, settings: Any
) -> None:
    from api.write_limits import acquire, release

    held = [uuid.uuid4().hex for _ in range(2)]
    for slot in held:
        decision = acquire(settings.redis_url, account.tenant_id, slot, 1000, 1000, 2)
        assert decision is not None and decision.allowed
    refused = limited.post("/v1/batches", headers=account.headers, json=BODY)
    assert refused.status_code == 429
    assert "already has 2 writes running" in refused.json()["error"]["message"]
    assert refused.headers["Retry-After"] == "1"
    release(settings.redis_url, account.tenant_id, held[0])
    assert limited.post("/v1/batches", headers=account.headers, json=BODY).status_code == 201


def test_a_finished_write_gives_its_slot_back(limited: TestClient, account: Account) -> None:
    from api.write_limits import _keys, _redis

    limited.post("/v1/batches", headers=account.headers, json=BODY)
    malformed = {**account.headers, "Content-Type": "application/json"}
    assert limited.post("/v1/batches", headers=malformed, content=b"{").status_code == 400
    redis = _redis(limited.app.state.settings.redis_url)  # type: ignore[attr-defined]
    assert redis.zcard(_keys(account.tenant_id)[1]) == 0


def test_every_write_documents_its_429(limited: TestClient) -> None:
    document = limited.get("/openapi.json").json()
    writes = [
        (path, method, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if path.startswith("/v1/") and method in ("post", "put", "patch", "delete")
    ]
    assert len(writes) >= 8
    for path, method, operation in writes:
        answer = operation["responses"]["429"]
        assert set(answer["headers"]) == {"Retry-After", "RateLimit-Policy", "RateLimit"}, path
        schema = answer["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, method)
