"""Admission: move queued jobs into the pipeline within each tenant's in-flight limit.

Fair across tenants (each tenant fills its own limit, visited in turn) and across batches (jobs
of equal priority are taken by their index in the batch, so batches interleave).
"""

import logging
import random
import uuid

from core.db import session_scope
from core.repo.pipeline import (
    active_count,
    lock_tenant_admission,
    tenants_with_queued_jobs,
)
from core.repo.transitions import admit_next
from core.states import JobState
from worker import enqueue
from worker.credits import preflight_batches, wake_credit_waiters

log = logging.getLogger("worker.admission")

MAX_ADMIT_PER_PASS = 1000


def admit_jobs() -> int:
    """One admission pass; returns how many jobs were admitted."""
    admitted: list[uuid.UUID] = []
    with session_scope() as session:
        tenants = tenants_with_queued_jobs(session)
    random.shuffle(tenants)  # no tenant is always first
    for tenant in tenants:
        if len(admitted) >= MAX_ADMIT_PER_PASS:
            break
        with session_scope() as session:
            lock_tenant_admission(session, tenant.id)
            room = min(
                tenant.inflight_limit - active_count(session, tenant.id),
                MAX_ADMIT_PER_PASS - len(admitted),
            )
            if room <= 0:
                continue
            admitted.extend(admit_next(session, tenant.id, room))
    enqueue.pipelines_from([(job_id, JobState.TOKEN) for job_id in admitted])
    if admitted:
        log.info("admitted %d jobs", len(admitted))
    return len(admitted)


def dispatch() -> int:
    """The `worker.dispatch` task: credit preflight for new batches, then admission."""
    try:
        preflight_batches()
    except Exception:  # a preflight is advice; never let it stop admission
        log.warning("credit preflight failed", exc_info=True)
    wake_credit_waiters()
    return admit_jobs()
