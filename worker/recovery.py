"""Recovery from Postgres: due waits become tasks again, and stale jobs are re-driven.

Losing every Redis message loses no job: the claimer and the sweeper rebuild the work from the
jobs table (RELIABILITY.md).
"""

import logging
from datetime import timedelta

from core.db import session_scope
from core.repo.jobs import utcnow
from core.repo.transitions import redrive_stale, resume_due
from core.settings import get_settings
from worker import enqueue

log = logging.getLogger("worker.recovery")

BATCH = 500


def claim_due() -> int:
    """Turn jobs whose wait is over back into tasks (SKIP LOCKED: safe with many claimers)."""
    with session_scope() as session:
        ready = resume_due(session, BATCH)
    enqueue.pipelines_from(ready)
    return len(ready)


def sweep() -> int:
    """Re-drive running jobs nobody has touched within the staleness limit."""
    settings = get_settings()
    stale_before = utcnow() - timedelta(seconds=settings.heartbeat_stale_s)
    with session_scope() as session:
        count = redrive_stale(session, stale_before, BATCH)
    if count:
        log.warning("re-driving %d stale jobs from their checkpoints", count)
    return count
