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
