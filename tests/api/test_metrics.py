"""`GET /metrics`: Prometheus text, no API key, values read from Postgres and Redis that move
as jobs change state in other processes."""

import time
import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import Account, create_batch, job_ids, update_job


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = client.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    values = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


def test_metrics_need_no_key_and_list_jobs_credits_queues_and_step_metrics(
    client: TestClient, account: Account, redis_client: Any
) -> None:
    from core.db import session_scope
    from core.models import CreditBalance

    with session_scope() as session:
        session.merge(CreditBalance(account="shared", available=1234, frozen=0, total=2000))
    redis_client.rpush("webhooks", "a", "b")

    values = scrape(client)

    assert ("nemo_jobs", (("state", "render"),)) in values
    assert values[("nemo_credits_available", (("account", "shared"),))] == 1234
    assert values[("nemo_queue_depth", (("queue", "webhooks"),))] == 2
    assert values[("nemo_queue_depth", (("queue", "pipeline"),))] == 0
    assert values[("nemo_database_up", ())] == 1
    assert values[("nemo_redis_up", ())] == 1


def test_job_gauges_and_event_counters_move_as_jobs_change_state(
    client: TestClient, account: Account
) -> None:
    from core.db import session_scope
    from core.models import JobEvent
    from core.repo.jobs import utcnow

    before = scrape(client)
    batch = create_batch(client, account, items=[{"title": "a"}, {"title": "b"}])
    first, second = job_ids(client, account, batch["id"])
    update_job(first, state="render")
    update_job(second, state="failed", error_code="no_result")
    settled = utcnow() - timedelta(seconds=30)  # as if written by a worker a while ago
    with session_scope() as session:
        job = uuid.UUID(first)
        session.add_all(
            [
                JobEvent(job_id=job, at=settled, step="export", kind="step_done", latency_ms=800),
                JobEvent(
                    job_id=job,
                    at=settled,
                    step="prompt",
                    kind="retry",
                    latency_ms=40,
                    http_status=429,
                    data={"code": "rate_limited"},
                ),
            ]
        )

    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    deadline = time.monotonic() + 30  # events younger than a few seconds wait for a scrape
    while not delta("nemo_step_duration_seconds_count", step="export", outcome="step_done"):
        assert time.monotonic() < deadline, "the events never showed in /metrics"
        time.sleep(0.5)
        after = scrape(client)

    assert delta("nemo_jobs", state="render") == 1
    assert delta("nemo_jobs", state="failed") == 1
    assert delta("nemo_step_duration_seconds_count", step="export", outcome="step_done") == 1
    assert delta("nemo_step_duration_seconds_bucket", step="export", outcome="step_done", le="1.0")
    assert not delta(
        "nemo_step_duration_seconds_bucket", step="export", outcome="step_done", le="0.5"
    )
    assert delta("nemo_retries_total", step="prompt", code="rate_limited") == 1
    assert delta("nemo_rate_limited_total", step="prompt") == 1
    assert (
        delta(
            "nemo_backend_results_total",
            step="export",
            outcome="ok",
            http_status="",
            backend_code="",
        )
        == 1
    )
    assert (
        delta(
            "nemo_backend_results_total",
            step="prompt",
            outcome="retry",
            http_status="429",
            backend_code="",
        )
        == 1
    )


def test_work_due_that_nothing_picks_up_shows_as_overdue_and_queues_without_consumers(
    client: TestClient, account: Account, redis_client: Any
) -> None:
    from core.repo.jobs import utcnow

    batch = create_batch(client, account, items=[{"title": "stalled"}, {"title": "fine"}])
    stalled, fine = job_ids(client, account, batch["id"])
    update_job(stalled, state="retry_wait", next_attempt_at=utcnow() - timedelta(minutes=5))
    update_job(fine, state="retry_wait", next_attempt_at=utcnow() + timedelta(minutes=5))
    redis_client.rpush("poll", "a message nobody takes")
    redis_client.set("nemo:consumer:stream:stream-1@host", 1, ex=30)

    values = scrape(client)

    assert values[("nemo_jobs_overdue", ())] >= 1
    assert values[("nemo_jobs_overdue_oldest_seconds", ())] >= 290
    assert values[("nemo_queue_consumers", (("queue", "poll"),))] == 0
    assert values[("nemo_queue_depth", (("queue", "poll"),))] == 1
    assert values[("nemo_queue_consumers", (("queue", "stream"),))] == 1
    update_job(stalled, state="failed", next_attempt_at=None)
    update_job(fine, state="failed", next_attempt_at=None)
