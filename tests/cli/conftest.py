"""CLI fixtures: the intake API served by uvicorn on a free loopback port, and tenants' keys."""

import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn

from core.loopback import free_port


@dataclass
class ServedApi:
    url: str
    server: uvicorn.Server


@pytest.fixture(scope="session")
def api_server(settings: Any) -> Iterator[ServedApi]:
    """The real app over the test database, served over HTTP in a thread."""
    from api.app import create_app

    port = free_port()
    # Fuzzers and client tests send writes far faster than a tenant may (api/write_limits.py).
    unlimited = settings.model_copy(update={"write_rate_per_minute": 10**6, "write_burst": 10**6})
    server = uvicorn.Server(
        uvicorn.Config(create_app(unlimited), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="api-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    yield ServedApi(f"http://127.0.0.1:{port}", server)
    server.should_exit = True
    thread.join(timeout=10)


@dataclass
class Tenant:
    id: uuid.UUID
    key: str


@pytest.fixture()
def tenant(settings: Any) -> Tenant:
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant

    with session_scope() as session:
        row = get_or_create_tenant(session, f"cli-{uuid.uuid4().hex[:8]}")
        return Tenant(row.id, create_api_key(session, row))
