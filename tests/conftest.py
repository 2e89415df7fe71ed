"""Suite-wide fixtures: a fresh Postgres database per test session, built by Alembic, and Redis.

The database is created before any project module reads its settings and dropped at the end,
so no test depends on leftover state.
"""

import atexit
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

ADMIN_DSN = os.environ.get("TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB = f"nemo_test_{uuid.uuid4().hex[:10]}"
TEST_DATABASE_URL = (
    ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{TEST_DB}"
)


def _private_redis() -> str:
    """A Redis server of this test session's own, so that test sessions running side by side
    never flush or consume each other's queues; the machine's Redis (db 15) if none can start."""
    binary = shutil.which("redis-server")
    if binary is None:
        return "redis://127.0.0.1:6379/15"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    atexit.register(process.kill)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if redis.Redis.from_url(url, socket_timeout=1).ping():
                return url
        except redis.ConnectionError:
            time.sleep(0.05)
    process.kill()
    return "redis://127.0.0.1:6379/15"


TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL") or _private_redis()

# Settings are read from the environment: point every project module at the test services.
os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ["REDIS_URL"] = TEST_REDIS_URL


def _admin(sql: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(sql)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A new database migrated to head; dropped after the session."""
    from migrations.runner import upgrade

    _admin(f'CREATE DATABASE "{TEST_DB}"')
    try:
        upgrade(TEST_DATABASE_URL)
        yield TEST_DATABASE_URL
    finally:
        from core.db import reset_engine

        reset_engine()
        _admin(f'DROP DATABASE IF EXISTS "{TEST_DB}" WITH (FORCE)')


@pytest.fixture(scope="session")
def storage_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("storage")
    os.environ["STORAGE_DIR"] = str(path)
    return path


@pytest.fixture(scope="session")
def settings(database_url: str, storage_dir: Path) -> Iterator[object]:
    """Project settings pointing at the test database, Redis db 15 and a temporary storage."""
    from core.settings import get_settings

    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture()
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(TEST_REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
