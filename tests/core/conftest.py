"""Fixtures shared by the storage tests of core."""

from pathlib import Path

import pytest

from core.settings import Settings
from core.storage import Storage, storage_for


@pytest.fixture(params=["file", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """The same test on local storage and on the embedded S3 store (a real SeaweedFS)."""
    scratch = tmp_path / "host"
    if request.param == "file":
        return storage_for(Settings(storage_dir=scratch, storage_url=""))
    environment = request.getfixturevalue("s3_environment")
    settings = Settings(
        storage_dir=scratch,
        storage_url=environment["STORAGE_URL"],
        aws_endpoint_url=environment["AWS_ENDPOINT_URL"],
        aws_access_key_id=environment["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=environment["AWS_SECRET_ACCESS_KEY"],
        aws_region=environment["AWS_REGION"],
    )
    return storage_for(settings)
