"""Batch writes and reads: bulk intake, listing, counts, and the batch-wide actions.

The batch-wide actions that change jobs' states (cancel, retry the failed) are in
`core.repo.transitions`.
"""

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.orm import Session

from core.models import Batch, Job
from core.repo.jobs import utcnow
from core.repo.paging import keyset_page
from core.states import FINAL, BatchStatus, JobState

FINAL_BATCH: frozenset[str] = frozenset(
    {
        BatchStatus.SUCCEEDED,
        BatchStatus.COMPLETED_WITH_FAILURES,
        BatchStatus.FAILED,
        BatchStatus.CANCELED,
    }
)
_FINAL_JOB_STATES = [state.value for state in FINAL]


def find_by_idempotency_key(session: Session, tenant_id: uuid.UUID, key: str) -> Batch | None:
    return session.scalars(
        select(Batch).where(Batch.tenant_id == tenant_id, Batch.idempotency_key == key)
    ).first()


def insert_batch(session: Session, batch: Batch, job_rows: Sequence[dict[str, Any]]) -> None:
    """Store a batch and all its jobs in the caller's transaction, jobs as one bulk insert."""
    session.add(batch)
    session.flush()
    if job_rows:
        session.execute(insert(Job), list(job_rows))


def get_batch(session: Session, tenant_id: uuid.UUID, batch_id: uuid.UUID) -> Batch | None:
    return session.scalars(
        select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id)
    ).first()


def get_batch_for_update(
    session: Session, tenant_id: uuid.UUID, batch_id: uuid.UUID
) -> Batch | None:
    return session.scalars(
        select(Batch).where(Batch.id == batch_id, Batch.tenant_id == tenant_id).with_for_update()
    ).first()


def list_batches(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[Batch]:
    """A page of the tenant's batches, newest first, after the keyset `before`."""
    query = select(Batch).where(Batch.tenant_id == tenant_id)
    page = keyset_page(
        query, Batch.created_at, Batch.id, after=before, newest_first=True, limit=limit
    )
    return list(session.scalars(page))


def state_counts(
    session: Session, batch_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, int]]:
    """Jobs per state for each batch, every state present (zero included)."""
    counts = {batch_id: {state.value: 0 for state in JobState} for batch_id in batch_ids}
    if not batch_ids:
        return counts
    rows = session.execute(
        select(Job.batch_id, Job.state, func.count())
        .where(Job.batch_id.in_(batch_ids))
        .group_by(Job.batch_id, Job.state)
    )
    for batch_id, state, count in rows:
        counts[batch_id][state] = count
    return counts


def render_in_flight() -> ColumnElement[bool]:
    """A job posted a render whose video it has not got yet: the backend may still be at it.
    The same rule as `has_render_in_flight`, in SQL (a render id that is not null)."""
    return Job.checkpoint["render_id"].astext.is_not(None) & ~Job.checkpoint.has_key("output_url")


def has_render_in_flight(checkpoint: dict[str, Any]) -> bool:
    """`render_in_flight` for a job already loaded."""
    return checkpoint.get("render_id") is not None and "output_url" not in checkpoint


def reopen(batch: Batch) -> None:
    """A batch that gets work again is running and no longer finished."""
    batch.status = BatchStatus.RUNNING.value
    batch.finished_at = None


def has_waiting_credits(session: Session, batch_id: uuid.UUID) -> bool:
    return (
        session.scalars(
            select(Job.id)
            .where(Job.batch_id == batch_id, Job.state == JobState.WAITING_CREDITS.value)
            .limit(1)
        ).first()
        is not None
    )


def finish_if_done(session: Session, batch: Batch) -> None:
    """Give a batch its final status once no job is left to run."""
    # One index probe for the common case (jobs still running) instead of counting the whole
    # batch each time one of its jobs finishes, which made a batch's end O(n^2) (bench fig. 1).
    running = select(Job.id).where(Job.batch_id == batch.id, Job.state.not_in(_FINAL_JOB_STATES))
    if session.scalars(running.limit(1)).first() is not None:
        return
    counts = state_counts(session, [batch.id])[batch.id]
    total = sum(counts.values())
    if total == 0 or any(counts[state] for state in counts if JobState(state) not in FINAL):
        return
    if counts[JobState.CANCELED] == total:
        status = BatchStatus.CANCELED
    elif counts[JobState.FAILED] == total:
        status = BatchStatus.FAILED
    elif counts[JobState.FAILED]:
        status = BatchStatus.COMPLETED_WITH_FAILURES
    else:
        status = BatchStatus.SUCCEEDED
    batch.status = status.value
    batch.finished_at = batch.finished_at or utcnow()
