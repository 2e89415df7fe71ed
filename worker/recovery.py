"""Recovery from Postgres: due waits become tasks again, and stale jobs are re-driven.

Losing every Redis message loses no job: the claimer and the sweeper rebuild the work from the
jobs table (RELIABILITY.md).
"""

import logging
import uuid
from datetime import timedelta

from core.db import session_scope
from core.repo.jobs import transition, utcnow
from core.repo.pipeline import due_jobs, stale_jobs
from core.settings import get_settings
from core.states import WAITING, JobState
from worker import enqueue

log = logging.getLogger("worker.recovery")

BATCH = 500


def claim_due() -> int:
    """Turn jobs whose wait is over back into tasks (SKIP LOCKED: safe with many claimers)."""
    ready: list[tuple[uuid.UUID, str]] = []
    with session_scope() as session:
        for job in due_jobs(session, BATCH):
            if job.state in WAITING:
                transition(session, job, job.resume_state or JobState.TOKEN)
                job.resume_state = None
                job.error_message = None  # the wait's reason no longer holds
            job.next_attempt_at = None
            job.heartbeat_at = utcnow()
            ready.append((job.id, job.state))
    for job_id, state in ready:
        enqueue.pipeline_from(job_id, state)
    return len(ready)


def sweep() -> int:
    """Re-drive running jobs nobody has touched within the staleness limit."""
    settings = get_settings()
    stale_before = utcnow() - timedelta(seconds=settings.heartbeat_stale_s)
    with session_scope() as session:
        jobs = stale_jobs(session, stale_before, BATCH)
        for job in jobs:
            job.next_attempt_at = utcnow()  # the claimer sends it again
        count = len(jobs)
    if count:
        log.warning("re-driving %d stale jobs from their checkpoints", count)
    return count
