"""Queries the pipeline makes: stale jobs, admission, tenant pauses. Leases and every change of
a job's state are in `core.repo.transitions`."""

import uuid

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from core.models import Batch, Job, Tenant
from core.repo.jobs import utcnow
from core.states import ACTIVE, BatchStatus, JobState


def tenants_with_queued_jobs(session: Session) -> list[Tenant]:
    queued = select(Job.tenant_id).where(Job.state == JobState.QUEUED.value).distinct()
    statement = select(Tenant).where(Tenant.id.in_(queued), Tenant.paused_reason.is_(None))
    return list(session.scalars(statement))


def lock_tenant_admission(session: Session, tenant_id: uuid.UUID) -> None:
    """Serialize admission per tenant so two dispatchers never overshoot its limit."""
    session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"admit:{tenant_id}"}
    )


def active_count(session: Session, tenant_id: uuid.UUID) -> int:
    statement = select(func.count()).where(
        Job.tenant_id == tenant_id, Job.state.in_([s.value for s in ACTIVE])
    )
    return int(session.scalar(statement) or 0)


def pause_tenant(session: Session, tenant: Tenant, reason: str) -> None:
    """Out of credits: stop admitting the tenant's jobs and show its open batches as paused."""
    if tenant.paused_reason is None:
        tenant.paused_reason = reason
        tenant.paused_at = utcnow()
    open_batches = (
        select(Batch.id)
        .where(
            Batch.tenant_id == tenant.id,
            Batch.status.in_([BatchStatus.QUEUED.value, BatchStatus.RUNNING.value]),
        )
        .order_by(Batch.id)
        .with_for_update()  # in id order, as every multi-row lock (core.repo.transitions)
    )
    session.execute(
        update(Batch).where(Batch.id.in_(open_batches)).values(status=BatchStatus.PAUSED.value)
    )


def reopen_unpaused_batches(session: Session) -> None:
    """Batches shown as paused whose tenant is no longer paused are running again."""
    paused_tenants = select(Tenant.id).where(Tenant.paused_reason.is_not(None))
    paused = (
        select(Batch.id)
        .where(Batch.status == BatchStatus.PAUSED.value, Batch.tenant_id.not_in(paused_tenants))
        .order_by(Batch.id)
        .with_for_update()  # in id order, as every multi-row lock (core.repo.transitions)
    )
    session.execute(
        update(Batch).where(Batch.id.in_(paused)).values(status=BatchStatus.RUNNING.value)
    )
