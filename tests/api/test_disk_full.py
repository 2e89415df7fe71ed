"""A full disk (the API's storage, or PostgreSQL's) answers 507 in words a user understands,
and leaves nothing half-written: no temporary file, no row."""

import errno
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.api.conftest import Account, unique_image, upload


@pytest.fixture()
def served(app: FastAPI) -> Iterator[TestClient]:
    """As a real server answers: an unexpected error becomes an answer, not a test failure."""
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_an_upload_onto_a_full_disk_is_507_and_keeps_nothing(
    served: TestClient, account: Account, monkeypatch: pytest.MonkeyPatch, storage_dir: Path
) -> None:
    from core.db import session_scope
    from core.models import Asset
    from core.storage import Storage

    save = Storage.save_chunks

    def full_disk(self: Storage, area: str, chunks: Iterable[bytes], *args: Any, **kw: Any) -> Any:
        def written() -> Iterator[bytes]:
            yield from list(chunks)[:1]
            raise OSError(errno.ENOSPC, "No space left on device")

        return save(self, area, written(), *args, **kw)

    monkeypatch.setattr(Storage, "save_chunks", full_disk)
    answer = upload(served, account, unique_image())
    assert answer.status_code == 507, answer.text
    error = answer.json()["error"]
    assert error["code"] == "insufficient_storage"
    assert "disk is full" in error["message"] and "nothing of it was kept" in error["message"]
    assert "errno" not in error["message"].lower() and "ENOSPC" not in error["message"]
    leftovers = [path for path in (storage_dir / "assets" / "tmp").glob("*") if path.is_file()]
    assert leftovers == []
    with session_scope() as session:
        count = session.scalar(
            select(func.count()).select_from(Asset).where(Asset.tenant_id == account.tenant_id)
        )
    assert count == 0


def test_a_batch_when_postgres_disk_is_full_is_507_and_stores_no_job(
    served: TestClient, account: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg
    from sqlalchemy.exc import OperationalError

    def disk_full(*_: Any, **__: Any) -> None:
        raise OperationalError(
            "INSERT INTO jobs", {}, psycopg.errors.DiskFull("could not extend file")
        )

    monkeypatch.setattr("core.repo.batches.insert_batch", disk_full)
    answer = served.post("/v1/batches", headers=account.headers, json={"items": [{"title": "a"}]})
    assert answer.status_code == 507, answer.text
    assert answer.json()["error"]["code"] == "insufficient_storage"
    listed = served.get("/v1/batches", headers=account.headers).json()
    assert listed["items"] == []
