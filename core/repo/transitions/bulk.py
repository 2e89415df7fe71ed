"""Changes of many jobs at once, each one set-based statement with its event rows: a batch's
cancel and retry, credit waiters woken, the sweeper's re-drive of stale jobs."""

import uuid
from datetime import datetime

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.models import Batch, JobEvent, Tenant
from core.repo.batches import FINAL_BATCH, render_in_flight, reopen
from core.repo.deliveries import add_batch_completed
from core.repo.jobs import RETRY_FORGETS, utcnow
from core.repo.transitions.base import FINAL_VALUES, JOBS, NO_LEASE, state_event
from core.repo.transitions.locked import Canceled
from core.states import RUNNING, BatchStatus, JobState


def cancel_batch(session: Session, batch_id: uuid.UUID, message: str) -> Canceled | None:
    """Cancel every non-final job of a batch and the batch itself: jobs locked in id order,
    then the batch; None if the batch had already finished (nothing changed)."""
    now = utcnow()
    old = (
        select(JOBS.c.id, JOBS.c.state)
        .where(JOBS.c.batch_id == batch_id, JOBS.c.state.not_in(FINAL_VALUES))
        .order_by(JOBS.c.id)
        .with_for_update()
        .subquery()
    )
    changed = session.execute(
        update(JOBS)
        .where(JOBS.c.id == old.c.id)
        .values(state=JobState.CANCELED.value, finished_at=now, next_attempt_at=None, **NO_LEASE)
        .returning(JOBS.c.id, old.c.state, render_in_flight())
    ).all()
    rows = [state_event(job_id, state, JobState.CANCELED, message) for job_id, state, _ in changed]
    if rows:
        session.execute(insert(JobEvent), rows)
    batch = session.scalars(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
    if batch is None or batch.status in FINAL_BATCH:
        return None  # finished meanwhile: the caller rolls back
    batch.status = BatchStatus.CANCELED.value
    batch.finished_at = now
    if batch.webhook_url:
        add_batch_completed(session, batch, grace_s=0)
    return Canceled(len(changed), [job_id for job_id, _, rendering in changed if rendering])


def retry_failed(session: Session, batch_id: uuid.UUID, message: str) -> int:
    """Put a batch's failed jobs back in the queue (see `RETRY_FORGETS`); the batch runs again."""
    locked = (
        select(JOBS.c.id)
        .where(JOBS.c.batch_id == batch_id, JOBS.c.state == JobState.FAILED.value)
        .order_by(JOBS.c.id)
        .with_for_update()
        .subquery()
    )
    changed = (
        session.execute(
            update(JOBS)
            .where(JOBS.c.id == locked.c.id)
            .values(
                state=JobState.QUEUED.value,
                checkpoint=JOBS.c.checkpoint.op("-")(postgresql.array(RETRY_FORGETS)),
                error_code=None,
                error_message=None,
                bind_url=None,
                finished_at=None,
                next_attempt_at=None,
                resume_state=None,
                step_attempts=0,
                **NO_LEASE,
            )
            .returning(JOBS.c.id)
        )
        .scalars()
        .all()
    )
    if changed:
        failed = JobState.FAILED
        session.execute(
            insert(JobEvent),
            [state_event(job_id, failed, JobState.QUEUED, message) for job_id in changed],
        )
        batch = session.scalars(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
        if batch is not None:
            reopen(batch)
    return len(changed)


# -- waits that end: credits back, stale steps re-driven ---------------------------------------


def credit_waiters_due(session: Session, *, batch_id: uuid.UUID | None = None) -> int:
    """Jobs waiting for credits (of one batch, or of every tenant no longer paused) become due
    now; the claimer sends them back to their step. Rows locked in id order."""
    waiting = select(JOBS.c.id).where(JOBS.c.state == JobState.WAITING_CREDITS.value)
    if batch_id is not None:
        waiting = waiting.where(JOBS.c.batch_id == batch_id)
    else:  # jobs already due are left to the claimer
        paused = select(Tenant.id).where(Tenant.paused_reason.is_not(None))
        waiting = waiting.where(JOBS.c.next_attempt_at.is_(None), JOBS.c.tenant_id.not_in(paused))
    locked = waiting.order_by(JOBS.c.id).with_for_update().subquery()
    due = session.execute(
        update(JOBS)
        .where(JOBS.c.id == locked.c.id)
        .values(next_attempt_at=utcnow())
        .returning(JOBS.c.id)
    ).all()
    return len(due)


def resume_batch(session: Session, batch: Batch, tenant: Tenant) -> int:
    """Lift the tenant's credit pause; the batch's credit-waiting jobs become due now."""
    due = credit_waiters_due(session, batch_id=batch.id)
    tenant.paused_reason = None  # after the jobs: the lock order above
    tenant.paused_at = None
    reopen(batch)
    return due


def redrive_stale(session: Session, stale_before: datetime, limit: int) -> int:
    """Running jobs nobody has touched since `stale_before` and nobody holds (their message was
    lost) become due now, to be sent again from their checkpoints (SKIP LOCKED)."""
    now = utcnow()
    stale = (
        select(JOBS.c.id)
        .where(
            JOBS.c.state.in_([state.value for state in RUNNING]),
            JOBS.c.next_attempt_at.is_(None),
            or_(JOBS.c.lease_expires_at.is_(None), JOBS.c.lease_expires_at < now),
            or_(JOBS.c.heartbeat_at.is_(None), JOBS.c.heartbeat_at < stale_before),
        )
        .order_by(JOBS.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .subquery()
    )
    redriven = session.execute(
        update(JOBS).where(JOBS.c.id == stale.c.id).values(next_attempt_at=now).returning(JOBS.c.id)
    ).all()
    return len(redriven)
