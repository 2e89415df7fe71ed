"""Read queries for the API: jobs, their events, credit balances (always scoped to a tenant)."""

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import CreditBalance, Job, JobEvent, Tenant


def get_job(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return session.scalars(select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id)).first()


def get_job_for_update(session: Session, tenant_id: uuid.UUID, job_id: uuid.UUID) -> Job | None:
    return session.scalars(
        select(Job).where(Job.id == job_id, Job.tenant_id == tenant_id).with_for_update()
    ).first()


def list_jobs(
    session: Session,
    tenant_id: uuid.UUID,
    batch_id: uuid.UUID,
    *,
    state: str | None,
    limit: int,
    after_index: int | None,
) -> list[Job]:
    """A page of a batch's jobs in item order."""
    query = select(Job).where(Job.batch_id == batch_id, Job.tenant_id == tenant_id)
    if state is not None:
        query = query.where(Job.state == state)
    if after_index is not None:
        query = query.where(Job.item_index > after_index)
    return list(session.scalars(query.order_by(Job.item_index).limit(limit)))


def list_events(
    session: Session, job_id: uuid.UUID, *, limit: int, after_id: int | None
) -> list[JobEvent]:
    """A page of a job's events, oldest first."""
    query = select(JobEvent).where(JobEvent.job_id == job_id)
    if after_id is not None:
        query = query.where(JobEvent.id > after_id)
    return list(session.scalars(query.order_by(JobEvent.id).limit(limit)))


def recent_events(session: Session, job_id: uuid.UUID, count: int = 20) -> list[JobEvent]:
    """The job's `count` most recent events, oldest of them first."""
    rows = session.scalars(
        select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id.desc()).limit(count)
    )
    return list(reversed(list(rows)))


SHARED_ACCOUNT = "shared"
"""The account of NEMO_TOKEN and of the shared anonymous token."""


def credit_account(tenant: Tenant) -> str:
    """The backend account a tenant's jobs spend: its own token's, or the shared one."""
    return credit_account_of(tenant.id, own_token=bool(tenant.backend_token))


def credit_account_of(tenant_id: uuid.UUID, *, own_token: bool) -> str:
    """The one rule naming a credit account, for callers that hold only the tenant's id."""
    return f"tenant:{tenant_id}" if own_token else SHARED_ACCOUNT


def credit_balance(session: Session, account: str) -> CreditBalance | None:
    return session.get(CreditBalance, account)
