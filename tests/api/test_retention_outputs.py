"""After RETENTION_DAYS a job's video and poster answer 410 Gone saying when and why (not 404
or 500), the job shows when they went, and the manifest and zip leave them out."""

import io
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api.conftest import Account, create_batch, job_ids, update_job
from tests.api.test_manifest import finish


def test_outputs_deleted_by_retention_answer_410_in_words_and_leave_the_zip(
    client: TestClient, account: Account, storage_dir: Path, settings: Any
) -> None:
    from core.db import session_scope
    from core.models import Tenant
    from core.repo.jobs import utcnow
    from core.retention import apply_retention
    from core.storage import open_storage

    items = [{"ref": "old-mug", "title": "Old mug"}, {"ref": "new-mug", "title": "New mug"}]
    batch = create_batch(client, account, items=items)
    old, new = job_ids(client, account, batch["id"])
    finish(storage_dir, old, uuid.uuid4().bytes * 300)
    finish(storage_dir, new, uuid.uuid4().bytes * 300)
    update_job(old, finished_at=utcnow() - timedelta(days=40))
    with session_scope() as session:
        session.get_one(Tenant, account.tenant_id).storage_used_bytes = 10_000

    with session_scope() as session:
        report = apply_retention(session, 30, dry_run=False, storage=open_storage())
    assert report.files.outputs >= 1

    for what in ("video", "poster"):
        gone = client.get(f"/v1/jobs/{old}/{what}", headers=account.headers)
        assert gone.status_code == 410, gone.text
        error = gone.json()["error"]
        assert error["code"] == "gone"
        assert "after 30 days by the retention policy" in error["message"]
        assert f"the {what} was deleted on " in error["message"]
    assert client.get(f"/v1/jobs/{new}/video", headers=account.headers).status_code == 200
    shown = client.get(f"/v1/jobs/{old}", headers=account.headers).json()
    assert shown["output"]["deleted_at"] is not None

    manifest = client.get(f"/v1/batches/{batch['id']}/manifest.json", headers=account.headers)
    first, second = manifest.json()["items"]
    assert first["video_url"] is None and first["poster_url"] is None
    assert second["video_url"] is not None
    archive = client.get(f"/v1/batches/{batch['id']}/videos.zip", headers=account.headers)
    assert archive.status_code == 200
    assert zipfile.ZipFile(io.BytesIO(archive.content)).namelist() == ["new-mug.mp4"]
    usage = client.get("/v1/usage", headers=account.headers).json()
    assert usage["storage_used_bytes"] < 10_000  # its charge (the video's size) came off
