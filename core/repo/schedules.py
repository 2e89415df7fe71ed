"""Schedule queries: tenant-scoped reads and writes, claiming due schedules, and what a
schedule's earlier runs produced (the fingerprints its incremental runs compare against)."""

import uuid
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.orm import Session

from core.models import Batch, Job, Schedule
from core.repo.paging import keyset_page
from core.states import FINAL, JobState

_FINAL_JOB_STATES = [state.value for state in FINAL]


def get_schedule(
    session: Session, tenant_id: uuid.UUID, schedule_id: uuid.UUID, *, lock: bool = False
) -> Schedule | None:
    query = select(Schedule).where(Schedule.id == schedule_id, Schedule.tenant_id == tenant_id)
    return session.scalars(query.with_for_update() if lock else query).first()


def list_schedules(
    session: Session,
    tenant_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None,
) -> list[Schedule]:
    """A page of the tenant's schedules, newest first, after the keyset `before`."""
    query = select(Schedule).where(Schedule.tenant_id == tenant_id)
    page = keyset_page(
        query, Schedule.created_at, Schedule.id, after=before, newest_first=True, limit=limit
    )
    return list(session.scalars(page))


def claim_due(session: Session, now: datetime) -> Schedule | None:
    """The most overdue schedule, locked; one a concurrent claimer holds is skipped, and one it
    has just advanced no longer matches, so each firing is claimed once."""
    query = (
        select(Schedule)
        .where(Schedule.next_run_at <= now)
        .where(or_(Schedule.running_until.is_(None), Schedule.running_until < now))
        .order_by(Schedule.next_run_at)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    return session.scalars(query).first()


def lock_schedule(session: Session, schedule_id: uuid.UUID) -> Schedule | None:
    """Serialize the runs of one schedule (their selection and insert)."""
    query = select(Schedule).where(Schedule.id == schedule_id).with_for_update()
    return session.scalars(query).first()


def succeeded_fingerprints(session: Session, schedule_id: uuid.UUID) -> dict[str, str | None]:
    """For each product ref of the schedule, the fingerprint of its last succeeded video."""
    query = (
        select(Job.ref, Job.product_fingerprint)
        .join(Batch, Batch.id == Job.batch_id)
        .where(
            Batch.schedule_id == schedule_id,
            Job.tenant_id == Batch.tenant_id,
            Job.state == JobState.SUCCEEDED.value,
            Job.ref.is_not(None),
        )
        .ext(distinct_on(Job.ref))
        .order_by(Job.ref, Job.finished_at.desc().nulls_last(), Job.created_at.desc())
    )
    return {ref: fingerprint for ref, fingerprint in session.execute(query) if ref is not None}


def inflight_fingerprints(session: Session, schedule_id: uuid.UUID) -> set[tuple[str, str]]:
    """(ref, fingerprint) of the schedule's jobs not yet final: videos already on their way."""
    query = (
        select(Job.ref, Job.product_fingerprint)
        .join(Batch, Batch.id == Job.batch_id)
        .where(
            Batch.schedule_id == schedule_id,
            Job.state.not_in(_FINAL_JOB_STATES),
            Job.ref.is_not(None),
            Job.product_fingerprint.is_not(None),
        )
    )
    return {(ref, fp) for ref, fp in session.execute(query) if ref is not None and fp is not None}
