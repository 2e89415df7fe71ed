"""A real S3-compatible store for the suite: the embedded SeaweedFS (`core/embedded/s3_server`),
started on first use by a keeper like the embedded PostgreSQL and Redis, deleted at the end."""

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.embedded import hold, release
from core.embedded.s3_server import EmbeddedS3


@pytest.fixture(scope="session")
def s3_server() -> Iterator[EmbeddedS3]:
    root = Path(tempfile.mkdtemp(prefix="nemo-test-s3-"))
    server = hold("s3", root / "s3", ephemeral=True, linger_s=0.5)
    try:
        yield EmbeddedS3(server.folder)
    finally:
        release(server.folder, wait_s=15)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture()
def s3_environment(s3_server: EmbeddedS3) -> dict[str, str]:
    """The settings of a store of its own for one test: the shared bucket, a fresh prefix."""
    environment = s3_server.environment()
    environment["STORAGE_URL"] += f"/test-{uuid.uuid4().hex[:10]}"
    return environment
