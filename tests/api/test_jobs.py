"""Jobs: detail, events, cancel, retry, downloads with Range; batch-wide actions; credits."""

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import Account, create_batch, job_ids, update_job


def add_events(job_id: str, count: int) -> None:
    from core.db import session_scope
    from core.models import Job
    from core.repo.jobs import add_event

    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        for index in range(count):
            add_event(session, job, "step", f"event {index}")


def one_job(client: TestClient, account: Account) -> tuple[str, str]:
    batch = create_batch(client, account)
    (job_id,) = job_ids(client, account, batch["id"])
    return batch["id"], job_id


@pytest.fixture()
def finished_job(client: TestClient, account: Account, storage_dir: Path) -> str:
    """A succeeded job whose video and poster lie in storage, as the download step leaves them."""
    _, job_id = one_job(client, account)
    outputs = storage_dir / "outputs" / job_id[:2]
    outputs.mkdir(parents=True, exist_ok=True)
    video = outputs / f"{job_id}.mp4"
    video.write_bytes(bytes(range(256)) * 4)
    poster = outputs / f"{job_id}.jpg"
    poster.write_bytes(b"\xff\xd8\xff" + b"\0" * 50)
    output = {
        "path": str(video),
        "poster_path": str(poster.relative_to(storage_dir)),
        "duration": 15.0,
        "width": 1080,
        "height": 1920,
        "codec": "h264",
        "size": 1024,
        "sha256": "ab" * 32,
    }
    update_job(job_id, state="succeeded", output=output, timeline_summary="Timeline (1 track)")
    return job_id


def test_a_job_shows_its_state_input_and_latest_20_events(
    client: TestClient, account: Account
) -> None:
    _, job_id = one_job(client, account)
    add_events(job_id, 25)
    job = client.get(f"/v1/jobs/{job_id}", headers=account.headers).json()
    assert job["state"] == "queued"
    assert job["attempts"] == 0
    assert job["input"]["title"] == "Blue mug"
    assert job["output"] is None
    assert [event["message"] for event in job["events"]] == [f"event {i}" for i in range(5, 25)]


def test_a_waiting_job_shows_the_step_it_returns_to(client: TestClient, account: Account) -> None:
    _, job_id = one_job(client, account)
    update_job(job_id, state="waiting_credits", resume_state="prompt", bind_url="https://b/x")
    job = client.get(f"/v1/jobs/{job_id}", headers=account.headers).json()
    assert (job["step"], job["bind_url"]) == ("prompt", "https://b/x")


def test_a_job_waiting_on_429s_shows_throttled_and_since_when_in_detail_and_list(
    client: TestClient, account: Account
) -> None:
    batch_id, job_id = one_job(client, account)
    job = client.get(f"/v1/jobs/{job_id}", headers=account.headers).json()
    assert (job["throttled"], job["throttled_since"]) == (False, None)
    since = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)
    update_job(job_id, state="retry_wait", resume_state="upload", throttled_since=since)
    job = client.get(f"/v1/jobs/{job_id}", headers=account.headers).json()
    assert job["throttled"] is True
    assert datetime.fromisoformat(job["throttled_since"]) == since
    listed = client.get(f"/v1/batches/{batch_id}/jobs", headers=account.headers).json()
    assert listed["items"][0]["throttled"] is True


def test_a_finished_job_shows_its_output_without_internal_paths(
    client: TestClient, account: Account, finished_job: str
) -> None:
    job = client.get(f"/v1/jobs/{finished_job}", headers=account.headers).json()
    output = job["output"]
    assert output["width"] == 1080
    assert output["video_url"].endswith(f"/v1/jobs/{finished_job}/video")
    assert output["poster_url"].endswith(f"/v1/jobs/{finished_job}/poster")
    assert job["timeline_summary"] == "Timeline (1 track)"
    assert "outputs/" not in str(job)


def test_all_events_are_paginated_oldest_first(client: TestClient, account: Account) -> None:
    _, job_id = one_job(client, account)
    add_events(job_id, 7)
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(
            f"/v1/jobs/{job_id}/events", headers=account.headers, params=params
        ).json()
        seen += [event["message"] for event in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == [f"event {i}" for i in range(7)]


def test_a_video_is_served_whole_and_by_range(
    client: TestClient, account: Account, finished_job: str
) -> None:
    whole = client.get(f"/v1/jobs/{finished_job}/video", headers=account.headers)
    assert whole.status_code == 200
    assert whole.headers["content-type"] == "video/mp4"
    assert len(whole.content) == 1024
    part = client.get(
        f"/v1/jobs/{finished_job}/video", headers={**account.headers, "Range": "bytes=0-99"}
    )
    assert part.status_code == 206
    assert part.content == whole.content[:100]
    assert part.headers["content-range"] == "bytes 0-99/1024"


def test_a_poster_is_served_from_a_path_relative_to_storage(
    client: TestClient, account: Account, finished_job: str
) -> None:
    poster = client.get(f"/v1/jobs/{finished_job}/poster", headers=account.headers)
    assert poster.status_code == 200
    assert poster.headers["content-type"] == "image/jpeg"


def test_a_video_that_is_not_ready_is_404_saying_so(client: TestClient, account: Account) -> None:
    _, job_id = one_job(client, account)
    for kind in ("video", "poster"):
        answer = client.get(f"/v1/jobs/{job_id}/{kind}", headers=account.headers)
        assert answer.status_code == 404
        assert f"the {kind} is not ready" in answer.json()["error"]["message"]


def test_a_path_outside_storage_is_never_served(
    client: TestClient, account: Account, tmp_path: Path
) -> None:
    _, job_id = one_job(client, account)
    secret = tmp_path / "secret.mp4"
    secret.write_bytes(b"not yours")
    for path in (str(secret), "../../etc/passwd", "/etc/passwd"):
        update_job(job_id, state="succeeded", output={"path": path})
        answer = client.get(f"/v1/jobs/{job_id}/video", headers=account.headers)
        assert answer.status_code == 404
        assert "not yours" not in answer.text


def test_canceling_a_job_makes_it_canceled_and_records_an_event(
    client: TestClient, account: Account
) -> None:
    batch_id, job_id = one_job(client, account)
    answer = client.post(f"/v1/jobs/{job_id}/cancel", headers=account.headers)
    assert answer.status_code == 200
    assert answer.json()["state"] == "canceled"
    assert answer.json()["events"][-1]["data"] == {"from": "queued", "to": "canceled"}
    batch = client.get(f"/v1/batches/{batch_id}", headers=account.headers).json()
    assert (batch["status"], batch["progress"]) == ("canceled", 1.0)


@pytest.mark.parametrize("state", ["succeeded", "failed", "canceled"])
def test_canceling_a_final_job_is_409(client: TestClient, account: Account, state: str) -> None:
    _, job_id = one_job(client, account)
    update_job(job_id, state=state)
    answer = client.post(f"/v1/jobs/{job_id}/cancel", headers=account.headers)
    assert answer.status_code == 409


@pytest.mark.parametrize("state", ["failed", "canceled"])
def test_a_failed_or_canceled_job_can_be_retried(
    client: TestClient, account: Account, state: str
) -> None:
    batch_id, job_id = one_job(client, account)
    update_job(job_id, state=state, error_code="no_result", error_message="x")
    answer = client.post(f"/v1/jobs/{job_id}/retry", headers=account.headers)
    assert answer.status_code == 200
    job = answer.json()
    assert (job["state"], job["error_code"]) == ("queued", None)
    assert client.get(f"/v1/batches/{batch_id}", headers=account.headers).json()["status"] == (
        "running"
    )


@pytest.mark.parametrize("state", ["queued", "render", "succeeded"])
def test_retrying_any_other_job_is_409(client: TestClient, account: Account, state: str) -> None:
    _, job_id = one_job(client, account)
    update_job(job_id, state=state)
    assert client.post(f"/v1/jobs/{job_id}/retry", headers=account.headers).status_code == 409


def test_canceling_a_batch_cancels_every_job_not_yet_final(
    client: TestClient, account: Account
) -> None:
    batch = create_batch(client, account, items=[{"title": f"p{i}"} for i in range(4)])
    first, second, *_ = job_ids(client, account, batch["id"])
    update_job(first, state="succeeded")
    update_job(second, state="render")
    answer = client.post(f"/v1/batches/{batch['id']}/cancel", headers=account.headers)
    assert answer.status_code == 200
    body = answer.json()
    assert body["changed"] == 3
    assert body["batch"]["status"] == "canceled"
    assert body["batch"]["counts"]["succeeded"] == 1
    assert body["batch"]["counts"]["canceled"] == 3
    again = client.post(f"/v1/batches/{batch['id']}/cancel", headers=account.headers)
    assert again.status_code == 409


def test_retry_failed_requeues_only_failed_jobs(client: TestClient, account: Account) -> None:
    batch = create_batch(client, account, items=[{"title": f"p{i}"} for i in range(3)])
    first, second, third = job_ids(client, account, batch["id"])
    update_job(first, state="failed", error_code="no_result")
    update_job(second, state="succeeded")
    update_job(third, state="failed", error_code="export_blocked")
    answer = client.post(f"/v1/batches/{batch['id']}/retry-failed", headers=account.headers)
    assert answer.status_code == 200
    body = answer.json()
    assert body["changed"] == 2
    assert body["batch"]["status"] == "running"
    assert body["batch"]["counts"]["queued"] == 2
    assert body["dispatched"] is True
    nothing_left = client.post(f"/v1/batches/{batch['id']}/retry-failed", headers=account.headers)
    assert nothing_left.status_code == 409


def test_resume_lifts_the_credit_pause(client: TestClient, account: Account) -> None:
    from core.db import session_scope
    from core.models import Batch, Tenant

    batch = create_batch(client, account)
    (job_id,) = job_ids(client, account, batch["id"])
    assert client.post(
        f"/v1/batches/{batch['id']}/resume", headers=account.headers
    ).status_code == (409)
    update_job(job_id, state="waiting_credits", resume_state="prompt")
    with session_scope() as session:
        tenant = session.get(Tenant, account.tenant_id)
        row = session.get(Batch, uuid.UUID(batch["id"]))
        assert tenant is not None and row is not None
        tenant.paused_reason, tenant.paused_at = "out of credits", datetime.now(UTC)
        row.status = "paused"
    answer = client.post(f"/v1/batches/{batch['id']}/resume", headers=account.headers)
    assert answer.status_code == 200
    assert answer.json()["batch"]["status"] == "running"
    assert answer.json()["changed"] == 1
    with session_scope() as session:
        tenant = session.get(Tenant, account.tenant_id)
        assert tenant is not None and tenant.paused_at is None and tenant.paused_reason is None


def test_jobs_are_listed_in_item_order_and_filtered_by_state(
    client: TestClient, account: Account
) -> None:
    batch = create_batch(client, account, items=[{"title": f"p{i}"} for i in range(5)])
    ids = job_ids(client, account, batch["id"])
    update_job(ids[3], state="failed")
    url = f"/v1/batches/{batch['id']}/jobs"
    page = client.get(url, headers=account.headers, params={"limit": 2}).json()
    assert [job["item_index"] for job in page["items"]] == [0, 1]
    rest = client.get(url, headers=account.headers, params={"cursor": page["next_cursor"]}).json()
    assert [job["item_index"] for job in rest["items"]] == [2, 3, 4]
    failed = client.get(url, headers=account.headers, params={"state": "failed"}).json()
    assert [job["id"] for job in failed["items"]] == [ids[3]]


def test_an_unknown_state_filter_is_422_listing_the_valid_ones(
    client: TestClient, account: Account
) -> None:
    batch = create_batch(client, account)
    answer = client.get(
        f"/v1/batches/{batch['id']}/jobs", headers=account.headers, params={"state": "done"}
    )
    assert answer.status_code == 422
    assert "waiting_credits" in answer.json()["error"]["message"]


def test_batch_progress_counts_final_jobs(client: TestClient, account: Account) -> None:
    batch = create_batch(client, account, items=[{"title": f"p{i}"} for i in range(4)])
    ids = job_ids(client, account, batch["id"])
    update_job(ids[0], state="succeeded")
    update_job(ids[1], state="failed")
    update_job(ids[2], state="render")
    shown = client.get(f"/v1/batches/{batch['id']}", headers=account.headers).json()
    assert shown["progress"] == 0.5
    assert shown["counts"]["render"] == 1
    assert shown["counts"]["token"] == 0


def test_a_tenant_never_reaches_another_tenants_jobs(
    client: TestClient, account: Account, other_account: Account, finished_job: str
) -> None:
    for method, suffix in [
        ("GET", ""),
        ("GET", "/events"),
        ("GET", "/video"),
        ("GET", "/poster"),
        ("POST", "/cancel"),
        ("POST", "/retry"),
    ]:
        answer = client.request(
            method, f"/v1/jobs/{finished_job}{suffix}", headers=other_account.headers
        )
        assert answer.status_code == 404, suffix


def test_credits_are_null_with_a_message_until_seen(client: TestClient, account: Account) -> None:
    body = client.get("/v1/credits", headers=account.headers).json()
    assert body["account"] == "shared"
    assert body["available"] is None
    assert body["message"]


def test_credits_show_the_tenants_own_account_when_it_has_a_token(
    client: TestClient, account: Account
) -> None:
    from core.db import session_scope
    from core.models import CreditBalance, Tenant

    with session_scope() as session:
        tenant = session.get(Tenant, account.tenant_id)
        assert tenant is not None
        tenant.backend_token = "nmv_usr_own"
        session.merge(
            CreditBalance(account=f"tenant:{tenant.id}", available=900, frozen=100, total=1000)
        )
    body = client.get("/v1/credits", headers=account.headers).json()
    assert (body["account"], body["available"], body["total"]) == ("tenant", 900, 1000)
    assert body["seen_at"] is not None


def _checkpoint(job_id: str) -> dict[str, Any]:
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        job = session.get(Job, uuid.UUID(job_id))
        assert job is not None
        return dict(job.checkpoint)


SPENT_PROGRESS = {
    "session_id": "123",
    "uploads": {"a": {"file_type": "image"}},
    "messages": [{"status": "verifying", "sends": 2}],
    "render_id": "render_1",
    "render_failures": 1,
}


@pytest.mark.parametrize("how", ["job", "batch"])
def test_a_retry_asks_the_agent_again_but_reuses_the_session_and_uploads(
    client: TestClient, account: Account, how: str
) -> None:
    batch_id, job_id = one_job(client, account)
    update_job(job_id, state="failed", error_code="no_result", checkpoint=SPENT_PROGRESS)
    path = f"/v1/jobs/{job_id}/retry" if how == "job" else f"/v1/batches/{batch_id}/retry-failed"
    assert client.post(path, headers=account.headers).status_code == 200
    assert _checkpoint(job_id) == {"session_id": "123", "uploads": {"a": {"file_type": "image"}}}
