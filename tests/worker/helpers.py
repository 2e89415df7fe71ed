"""Helpers for end-to-end tests: an API client with a tenant's key, media, job queries."""

import io
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from core.states import FINAL


@dataclass
class ApiUser:
    client: TestClient
    tenant_id: uuid.UUID
    headers: dict[str, str]

    def post(self, path: str, **kwargs: Any) -> Any:
        response = self.client.post(path, headers=self.headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, headers=self.headers, **kwargs)
        assert response.status_code < 300, response.text
        return response.json()

    def upload_image(self, color: str, size: tuple[int, int] = (64, 48)) -> str:
        buffer = io.BytesIO()
        Image.new("RGB", size, color).save(buffer, "PNG")
        files = {"file": (f"{color}.png", buffer.getvalue(), "image/png")}
        return str(self.post("/v1/assets", files=files)["id"])


@contextmanager
def api_user(
    inflight_limit: int = 100, backend_token: str | None = None, settings: Any = None
) -> Iterator[ApiUser]:
    """A tenant and a client of an in-process API (with its own `settings`, as another host's
    API would have)."""
    from api.app import create_app
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant

    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        tenant.inflight_limit = inflight_limit
        tenant.backend_token = backend_token
        key = create_api_key(session, tenant)
        tenant_id = tenant.id
    with TestClient(create_app(settings)) as client:
        yield ApiUser(client, tenant_id, {"Authorization": f"Bearer {key}"})


def batch_jobs(batch_id: str) -> list[Any]:
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        return list(
            session.scalars(
                select(Job).where(Job.batch_id == uuid.UUID(batch_id)).order_by(Job.item_index)
            )
        )


def all_final(batch_id: str) -> list[Any] | None:
    jobs = batch_jobs(batch_id)
    return jobs if jobs and all(job.state in FINAL for job in jobs) else None


def describe(jobs: list[Any]) -> str:
    """Each job's state, and the event trail of the ones that did not succeed."""
    from core.db import session_scope
    from core.models import JobEvent

    lines = []
    for job in jobs:
        lines.append(
            f"{job.item_index}: {job.state} {job.error_code or ''} {job.error_message or ''}"
        )
        if job.state != "succeeded":
            with session_scope() as session:
                events = session.scalars(
                    select(JobEvent).where(JobEvent.job_id == job.id).order_by(JobEvent.id)
                )
                lines += [f"    {e.step} {e.kind} {e.message} {e.data or ''}" for e in events]
    return "\n".join(lines)
