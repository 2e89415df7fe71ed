"""A rendered video that does not fit (the tenant over its storage quota, or a full disk) waits
for room with the reason on the job, is stored once room comes, is charged once, and fails
saying why only after STORAGE_WAIT_MAX_S; nothing half-written is left meanwhile."""

import errno
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.db import session_scope
from core.models import Tenant
from core.settings import get_settings
from core.states import JobState
from tests.worker.test_step_idempotency import DOWNLOAD, harness, job, rewind
from worker.runner import run_step
from worker.steps.download import download_step


def tenant_of(job_id: uuid.UUID) -> Tenant:
    with session_scope() as session:
        found = session.get_one(Tenant, job(job_id).tenant_id)
        session.expunge(found)
        return found


def set_quota(job_id: uuid.UUID, quota: int | None) -> None:
    with session_scope() as session:
        session.get_one(Tenant, job(job_id).tenant_id).storage_quota_bytes = quota


def outputs(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "storage").rglob("*") if p.is_file() and "outputs" in p.parts]


def scratch(tmp_path: Path) -> list[Path]:
    return [p for p in (tmp_path / "storage" / "tmp").glob("*") if p.is_file()]


def test_a_video_over_the_quota_waits_with_words_then_is_stored_and_charged_once(
    tmp_path: Path,
) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.DOWNLOAD)
        before = tenant_of(job_id).storage_used_bytes
        assert before > 0  # the uploaded image
        set_quota(job_id, before + 1_000)  # a video is larger than 1 kB

        run_step(job_id, JobState.DOWNLOAD, download_step)

        waiting = job(job_id)
        assert waiting.state == JobState.DOWNLOAD.value and waiting.next_attempt_at is not None
        assert waiting.error_message is not None
        assert "does not fit the tenant's storage quota" in waiting.error_message
        assert "raise the quota" in waiting.error_message
        assert outputs(tmp_path) == [] and scratch(tmp_path) == []
        assert tenant_of(job_id).storage_used_bytes == before

        set_quota(job_id, None)
        rewind(job_id, JobState.DOWNLOAD)
        run_step(job_id, JobState.DOWNLOAD, download_step)
        done = job(job_id)
        assert done.state == JobState.SUCCEEDED.value and done.error_message is None
        assert done.output is not None
        stored = done.output["stored_bytes"]
        assert stored > done.output["size"]  # the poster is counted too
        assert tenant_of(job_id).storage_used_bytes == before + stored

        rewind(job_id, JobState.DOWNLOAD)  # re-driven: charged once
        run_step(job_id, JobState.DOWNLOAD, download_step)
        assert tenant_of(job_id).storage_used_bytes == before + stored
        assert h.calls(DOWNLOAD) >= 1


def test_a_video_over_the_quota_fails_saying_why_after_the_longest_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.DOWNLOAD)
        set_quota(job_id, tenant_of(job_id).storage_used_bytes + 1_000)
        monkeypatch.setattr(get_settings(), "storage_wait_max_s", 0.0)
        before = tenant_of(job_id).storage_used_bytes

        run_step(job_id, JobState.DOWNLOAD, download_step)

        failed = job(job_id)
        assert failed.state == JobState.FAILED.value
        assert failed.error_code == "storage_quota_exceeded"
        assert failed.error_message is not None
        assert "rendered but not stored" in failed.error_message
        assert tenant_of(job_id).storage_used_bytes == before
        assert outputs(tmp_path) == []


def test_a_full_disk_makes_the_video_wait_then_it_is_stored_once_space_is_freed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core.storage import Storage

    with harness(tmp_path) as h:
        job_id = h.new_job()
        h.advance_to(job_id, JobState.DOWNLOAD)
        before = tenant_of(job_id).storage_used_bytes
        adopt = Storage.adopt

        def full(self: Storage, area: str, temporary: Path, *args: Any) -> Any:
            temporary.unlink()
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(Storage, "adopt", full)
        run_step(job_id, JobState.DOWNLOAD, download_step)

        waiting = job(job_id)
        assert waiting.state == JobState.DOWNLOAD.value
        assert waiting.error_message is not None
        assert "disk is full" in waiting.error_message
        assert "errno" not in waiting.error_message.lower()
        assert outputs(tmp_path) == [] and scratch(tmp_path) == []

        monkeypatch.setattr(Storage, "adopt", adopt)
        rewind(job_id, JobState.DOWNLOAD)
        run_step(job_id, JobState.DOWNLOAD, download_step)
        done = job(job_id)
        assert done.state == JobState.SUCCEEDED.value, done.error_message
        assert done.output is not None
        assert tenant_of(job_id).storage_used_bytes == before + done.output["stored_bytes"]
        assert len(outputs(tmp_path)) == 1
