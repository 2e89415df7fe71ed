"""Suite-wide fixtures: a fresh Postgres database per test session, built by Alembic, and Redis.

With TEST_ADMIN_DSN and TEST_REDIS_URL unset (as on a fresh machine), the session runs its own
embedded PostgreSQL and Redis (`core/embedded`) in a temporary folder, stopped and deleted at
the end; given, the session uses those servers instead. Either way the database is created
before any project module reads its settings and dropped at the end, so no test depends on
leftover state.
"""

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url

from core.embedded import hold, release_all
from core.embedded.postgres_server import EmbeddedPostgres
from tests.support.embedded import folder_root  # noqa: F401  (a fixture for every suite)
from tests.support.s3 import s3_environment, s3_server  # noqa: F401  (started on first use)

SERVICES_ROOT = Path(tempfile.mkdtemp(prefix="nemo-test-services-"))
EMBEDDED_POSTGRES: EmbeddedPostgres | None = None
"""The session's own PostgreSQL, when it runs one (chaos restarts it); None when given."""


def _stop_embedded() -> None:
    release_all(wait_s=15)
    shutil.rmtree(SERVICES_ROOT, ignore_errors=True)


atexit.register(_stop_embedded)


def _admin_dsn() -> str:
    global EMBEDDED_POSTGRES
    if given := os.environ.get("TEST_ADMIN_DSN"):
        return given
    server = hold("postgres", SERVICES_ROOT / "postgres", ephemeral=True, linger_s=0.5)
    EMBEDDED_POSTGRES = EmbeddedPostgres(server.folder / "data", durable=False)
    url = make_url(server.url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def url_of_database(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the test server."""
    url = make_url(ADMIN_DSN).set(drivername="postgresql+psycopg", database=name)
    return url.render_as_string(hide_password=False)


ADMIN_DSN = _admin_dsn()
TEST_DB = f"nemo_test_{uuid.uuid4().hex[:10]}"
TEST_DATABASE_URL = url_of_database(TEST_DB)
TEST_REDIS_URL = (
    os.environ.get("TEST_REDIS_URL")
    or hold("redis", SERVICES_ROOT / "redis", ephemeral=True, linger_s=0.5).url
)

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
