"""Uploads against the tenant's storage quota: what fits is stored and counted, what does not
is refused with 413 `storage_quota_exceeded` in words (used, quota, size, what to do), and
nothing of it is kept or counted; GET /v1/usage shows the figures."""

import hashlib
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.api.conftest import Account, unique_image, upload


def set_quota(account: Account, quota: int | None) -> None:
    from core.db import session_scope
    from core.models import Tenant

    with session_scope() as session:
        session.get_one(Tenant, account.tenant_id).storage_quota_bytes = quota


def usage(client: TestClient, account: Account) -> dict[str, Any]:
    answer = client.get("/v1/usage", headers=account.headers)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def asset_count(account: Account) -> int:
    from core.db import session_scope
    from core.models import Asset

    with session_scope() as session:
        count = session.scalar(
            select(func.count()).select_from(Asset).where(Asset.tenant_id == account.tenant_id)
        )
    return int(count or 0)


def test_an_upload_beyond_the_quota_is_413_in_words_and_keeps_nothing(
    client: TestClient, account: Account
) -> None:
    first, second = unique_image(), unique_image()
    set_quota(account, len(first) + len(second) - 1)
    assert usage(client, account)["storage_used_bytes"] == 0

    stored = upload(client, account, first)
    assert stored.status_code == 201, stored.text
    assert upload(client, account, first).status_code == 200  # the same bytes: not counted twice
    assert usage(client, account)["storage_used_bytes"] == len(first)

    refused = upload(client, account, second)
    assert refused.status_code == 413, refused.text
    error = refused.json()["error"]
    assert error["code"] == "storage_quota_exceeded"
    message = error["message"]
    assert f"({len(second)} bytes)" in message
    assert f"{len(first)} of {len(first) + len(second) - 1} bytes are used" in message
    assert "retention" in message and "raise the quota" in message
    assert asset_count(account) == 1
    figures = usage(client, account)
    assert figures["storage_used_bytes"] == len(first)
    assert figures["storage_free_bytes"] == len(second) - 1

    set_quota(account, None)  # the setting (unset here): no limit
    assert upload(client, account, second).status_code == 201
    assert usage(client, account)["storage_quota_bytes"] is None
    assert usage(client, account)["storage_used_bytes"] == len(first) + len(second)


def test_a_tenant_at_its_quota_is_refused_before_anything_is_written(
    client: TestClient, account: Account, other_account: Account, storage_dir: Path
) -> None:
    from core.db import session_scope
    from core.models import Tenant

    with session_scope() as session:
        tenant = session.get_one(Tenant, account.tenant_id)
        tenant.storage_quota_bytes = tenant.storage_used_bytes = 10
    content = unique_image()
    refused = upload(client, account, content)
    assert refused.status_code == 413
    assert refused.json()["error"]["code"] == "storage_quota_exceeded"
    digest = hashlib.sha256(content).hexdigest()
    assert list(storage_dir.rglob(f"{digest}*")) == []
    # Another tenant's quota is its own.
    assert upload(client, other_account, content).status_code == 201
    assert list(storage_dir.rglob(f"{digest}*")) != []


def test_the_default_quota_comes_from_the_settings(app: Any, account: Account) -> None:
    from api.app import create_app

    limited = create_app(app.state.settings.model_copy(update={"storage_quota_bytes": 50}))
    with TestClient(limited) as client:
        refused = upload(client, account, unique_image())
        assert refused.status_code == 413, refused.text
        assert usage(client, account)["storage_quota_bytes"] == 50


def test_the_document_names_the_quota_and_retention_answers(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    paths = document["paths"]
    assert {"200", "401"} <= set(paths["/v1/usage"]["get"]["responses"])
    assert "413" in paths["/v1/assets"]["post"]["responses"]
    for route in ("/v1/jobs/{job_id}/video", "/v1/jobs/{job_id}/poster"):
        gone = paths[route]["get"]["responses"]["410"]
        assert gone["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorBody")
    codes = document["components"]["schemas"]["Error"]["properties"]["code"]["description"]
    assert "`storage_quota_exceeded`" in codes and "`gone`" in codes
