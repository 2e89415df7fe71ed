"""API fixtures: the app over the test database, tenants with API keys, and media makers."""

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

UPLOAD_LIMIT = 300_000
REQUEST_LIMIT = 16_000_000
METRICS_TOKEN = "metrics-token-for-tests"


@pytest.fixture(scope="session")
def app(settings: Any) -> FastAPI:
    from api.app import create_app

    return create_app(
        settings.model_copy(
            update={
                "max_upload_bytes": UPLOAD_LIMIT,
                "max_request_bytes": REQUEST_LIMIT,
                "metrics_token": METRICS_TOKEN,
            }
        )
    )


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class Account:
    tenant_id: uuid.UUID
    name: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def make_account(backend_token: str | None = None) -> Account:
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant

    name = f"shop-{uuid.uuid4().hex[:8]}"
    with session_scope() as session:
        tenant = get_or_create_tenant(session, name)
        tenant.backend_token = backend_token
        key = create_api_key(session, tenant)
        return Account(tenant_id=tenant.id, name=name, key=key)


@pytest.fixture()
def account(settings: Any) -> Account:
    return make_account()


@pytest.fixture()
def other_account(settings: Any) -> Account:
    return make_account()


def png_bytes(color: str = "red", size: tuple[int, int] = (16, 16), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture()
def image_file(tmp_path: Path) -> Path:
    path = tmp_path / "product.png"
    path.write_bytes(png_bytes(f"#{uuid.uuid4().hex[:6]}"))
    return path


def upload(client: TestClient, account: Account, content: bytes, name: str = "a.png") -> Any:
    return client.post(
        "/v1/assets",
        headers=account.headers,
        files={"file": (name, content, "application/octet-stream")},
    )


def unique_image() -> bytes:
    return png_bytes(f"#{uuid.uuid4().hex[:6]}")


def create_batch(client: TestClient, account: Account, **fields: Any) -> dict[str, Any]:
    body = {"items": [{"title": "Blue mug"}], **fields}
    answer = client.post("/v1/batches", headers=account.headers, json=body)
    assert answer.status_code == 201, answer.text
    result: dict[str, Any] = answer.json()
    return result


def job_ids(client: TestClient, account: Account, batch_id: str) -> list[str]:
    answer = client.get(f"/v1/batches/{batch_id}/jobs", headers=account.headers)
    return [job["id"] for job in answer.json()["items"]]


def update_job(job_id: str, **fields: Any) -> None:
    """Put a job where a worker would have left it."""
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        for name, value in fields.items():
            setattr(job, name, value)
