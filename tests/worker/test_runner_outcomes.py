"""How the runner records outcomes on a job (real Postgres, no backend)."""

import uuid
from typing import Any

import pytest

from core.states import JobState
from worker.outcomes import Backoff


def _job_at(step: JobState, step_attempts: int) -> uuid.UUID:
    from core.db import session_scope
    from core.models import Batch, Job
    from core.repo.tenants import get_or_create_tenant

    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"runner-{uuid.uuid4().hex[:8]}")
        batch = Batch(tenant_id=tenant.id, name="b", prompt_template="t", item_count=1)
        session.add(batch)
        session.flush()
        job = Job(
            batch_id=batch.id,
            tenant_id=tenant.id,
            item_index=0,
            state=step.value,
            step_attempts=step_attempts,
        )
        session.add(job)
        session.flush()
        return job.id


def _job(job_id: uuid.UUID) -> Any:
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        return session.get(Job, job_id)


@pytest.mark.parametrize(("code", "kept"), [("rate_limited", 2), ("paced", 2), ("backend", 3)])
def test_a_rate_limit_wait_does_not_use_up_the_steps_attempts(
    settings: object, code: str, kept: int
) -> None:
    from worker.runner import apply_outcome

    job_id = _job_at(JobState.UPLOAD, step_attempts=3)  # the third try just ran
    apply_outcome(job_id, JobState.UPLOAD, Backoff(1.0, code, "wait"), latency_ms=5)

    job = _job(job_id)
    assert job.state == JobState.RETRY_WAIT
    assert job.resume_state == JobState.UPLOAD
    assert job.step_attempts == kept
    assert job.next_attempt_at is not None


def _events(job_id: uuid.UUID) -> list[tuple[str, str, str | None]]:
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import JobEvent

    with session_scope() as session:
        rows = session.execute(
            select(JobEvent.kind, JobEvent.step, JobEvent.message)
            .where(JobEvent.job_id == job_id)
            .order_by(JobEvent.id)
        )
        return [(kind, step, message) for kind, step, message in rows]


def test_the_first_claim_of_an_admitted_job_starts_its_token_step_once(settings: object) -> None:
    from core.db import get_engine
    from core.repo.transitions import claim_step

    job_id = _job_at(JobState.ADMITTED, step_attempts=0)
    with get_engine().begin() as connection:
        claim = claim_step(connection, job_id, JobState.TOKEN, lease_s=60)
    with get_engine().begin() as connection:
        # a duplicate message while the lease is held: not ours to run
        duplicate = claim_step(connection, job_id, JobState.TOKEN, lease_s=60)

    assert claim is not None and claim.step_attempts == 1
    assert duplicate is None
    job = _job(job_id)
    assert job.state == JobState.TOKEN and job.step_attempts == 1 and job.attempts == 1
    # the duplicate asked for the job to be looked at again once the lease ends
    assert job.next_attempt_at == job.lease_expires_at
    assert _events(job_id) == [("state", "token", "admitted -> token")]


def test_a_claim_for_another_step_than_the_jobs_changes_nothing(settings: object) -> None:
    from core.db import get_engine
    from core.repo.transitions import claim_step

    job_id = _job_at(JobState.ADMITTED, step_attempts=0)
    with get_engine().begin() as connection:
        assert claim_step(connection, job_id, JobState.SESSION, lease_s=60) is None

    job = _job(job_id)
    assert job.state == JobState.ADMITTED and job.attempts == 0 and job.lease_expires_at is None
    assert _events(job_id) == []


def test_a_lease_renewal_that_races_the_steps_end_leaves_the_next_step_free(
    settings: object,
) -> None:
    from core.db import get_engine
    from core.repo.transitions import StepDone, advance_to_next_step, claim_step, extend_leases

    job_id = _job_at(JobState.SESSION, step_attempts=0)
    with get_engine().begin() as connection:
        claim = claim_step(connection, job_id, JobState.SESSION, lease_s=60)
    assert claim is not None
    before = _job(job_id).lease_expires_at
    with get_engine().begin() as connection:  # the step still runs: its lease is renewed
        extend_leases(connection, [(job_id, claim.lease)], lease_s=600)
    assert _job(job_id).lease_expires_at > before

    with get_engine().begin() as connection:
        done = StepDone(attempt=1, checkpoint={}, fields={}, message=None, latency_ms=1)
        moved = advance_to_next_step(connection, job_id, JobState.SESSION, claim.lease, done)
    with get_engine().begin() as connection:  # the renewal thread read the step as held
        extend_leases(connection, [(job_id, claim.lease)], lease_s=600)

    job = _job(job_id)
    assert moved and job.state == JobState.UPLOAD
    assert job.lease_expires_at is None, "the next step was leased to nobody"
    with get_engine().begin() as connection:
        assert claim_step(connection, job_id, JobState.UPLOAD, lease_s=60) is not None


def test_a_step_whose_every_try_killed_its_worker_fails_the_job_instead_of_running_again(
    settings: object,
) -> None:
    from worker.outcomes import Outcome
    from worker.runner import StepContext, crash_limit, run_step

    def must_not_run(context: StepContext) -> Outcome:
        raise AssertionError("the step ran again")

    # the step was claimed crash_limit() times and never came back with an outcome
    job_id = _job_at(JobState.DOWNLOAD, step_attempts=crash_limit())
    assert run_step(job_id, JobState.DOWNLOAD, must_not_run) is False

    job = _job(job_id)
    assert job.state == JobState.FAILED and job.error_code == "worker_crashed"
    assert f"started {crash_limit()} times" in job.error_message
    assert ("error", "download", job.error_message) in _events(job_id)


def test_a_job_waiting_on_429s_shows_throttled_since_and_anything_else_clears_it(
    settings: object,
) -> None:
    from worker.outcomes import Wait
    from worker.runner import apply_outcome

    job_id = _job_at(JobState.UPLOAD, step_attempts=1)
    apply_outcome(job_id, JobState.UPLOAD, Backoff(1.0, "rate_limited", "429"), latency_ms=5)
    first = _job(job_id).throttled_since
    assert first is not None
    _back_at(job_id, JobState.UPLOAD)
    apply_outcome(job_id, JobState.UPLOAD, Backoff(1.0, "paced", "our own pacing"), latency_ms=5)
    assert _job(job_id).throttled_since == first  # our own pacing is no answer from the backend
    _back_at(job_id, JobState.UPLOAD)
    apply_outcome(job_id, JobState.UPLOAD, Backoff(1.0, "rate_limited", "429"), latency_ms=5)
    assert _job(job_id).throttled_since == first  # since the first 429, not the latest
    assert "throttled since" in (_events(job_id)[-1][2] or "")
    _back_at(job_id, JobState.UPLOAD)
    apply_outcome(job_id, JobState.UPLOAD, Wait(1.0), latency_ms=5)
    assert _job(job_id).throttled_since is None


def test_a_job_throttled_longer_than_the_limit_fails_rate_limited(
    settings: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    from core.db import session_scope
    from core.models import Job
    from core.repo.jobs import utcnow
    from core.settings import get_settings
    from worker.runner import apply_outcome

    monkeypatch.setenv("NEMO_THROTTLE_MAX_S", "3600")
    get_settings.cache_clear()
    job_id = _job_at(JobState.PROMPT, step_attempts=1)
    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.throttled_since = utcnow() - timedelta(hours=2)
    apply_outcome(job_id, JobState.PROMPT, Backoff(1.0, "rate_limited", "429"), latency_ms=5)

    job = _job(job_id)
    assert job.state == JobState.FAILED
    assert job.error_code == "rate_limited"
    assert "429" in job.error_message and "NEMO_THROTTLE_MAX_S" in job.error_message
    assert job.throttled_since is None


def _back_at(job_id: uuid.UUID, step: JobState) -> None:
    """The due wait claimed: the job is at its step again (what claim_due does)."""
    from core.db import session_scope
    from core.models import Job

    with session_scope() as session:
        job = session.get(Job, job_id)
        assert job is not None
        job.state = step
