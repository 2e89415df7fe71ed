"""Queries the pipeline makes: step leases, due jobs, stale jobs, admission, batch progress."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, Table, case, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session

from core.models import Batch, Job, JobEvent, Tenant
from core.repo.batches import finish_if_done
from core.repo.jobs import transition, utcnow
from core.states import ACTIVE, FINAL, RUNNING, BatchStatus, JobState, check_transition, next_step


@dataclass(frozen=True)
class Claim:
    """What a worker needs to run the step it now leases: the job's data and its tenant's token."""

    step_attempts: int
    input: dict[str, Any]
    options: dict[str, Any]
    checkpoint: dict[str, Any]
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    backend_token: str | None


JOBS = cast(Table, Job.__table__)
JOB_EVENTS = cast(Table, JobEvent.__table__)
TENANT_TOKEN = select(Tenant.backend_token).where(Tenant.id == JOBS.c.tenant_id).scalar_subquery()


def claim_step(
    connection: Connection, job_id: uuid.UUID, step: JobState, lease_s: float
) -> Claim | None:
    """Take the lease on a job's current step, or None when the job is not ours to run now.

    The common case, a due job whose step nobody holds (or, for the first step, a job just
    admitted), is one UPDATE ... RETURNING on the connection, no ORM session: a step is claimed
    several times per job, so this is on the hot path. The rest is decided row by row.
    """
    now = utcnow()
    # A job just admitted starts its first step here: the claim moves it on.
    entry = JobState.ADMITTED.value if step == JobState.TOKEN else step.value
    before = (
        select(JOBS.c.id, JOBS.c.state)
        .where(JOBS.c.id == job_id)
        .with_for_update()
        .subquery("before")
    )
    claimed = connection.execute(
        update(JOBS)
        .where(
            JOBS.c.id == before.c.id,
            JOBS.c.state.in_({step.value, entry}),
            or_(JOBS.c.next_attempt_at.is_(None), JOBS.c.next_attempt_at <= now),
            or_(JOBS.c.lease_expires_at.is_(None), JOBS.c.lease_expires_at <= now),
        )
        .values(
            state=step.value,
            lease_expires_at=now + timedelta(seconds=lease_s),
            heartbeat_at=now,
            next_attempt_at=None,
            attempts=JOBS.c.attempts + 1,
            # a new step starts counting from one
            step_attempts=case((JOBS.c.state == step.value, JOBS.c.step_attempts + 1), else_=1),
        )
        .returning(
            before.c.state,
            JOBS.c.step_attempts,
            JOBS.c.input,
            JOBS.c.options,
            JOBS.c.checkpoint,
            JOBS.c.tenant_id,
            JOBS.c.batch_id,
            TENANT_TOKEN,
        )
    ).first()
    if claimed is not None:
        previous, *fields = claimed
        if previous != step.value:
            check_transition(previous, step.value)
            connection.execute(insert(JOB_EVENTS), _state_event(job_id, previous, step.value))
        return Claim(*fields)
    # An ORM session inside the connection's transaction, which commits with it.
    with Session(bind=connection) as session:
        job = _claim_job(session, job_id, step, lease_s)
        tenant = session.get(Tenant, job.tenant_id) if job is not None else None
        session.flush()  # a job left alone may still have been given a time to look again
        if job is None:
            return None
        return Claim(
            step_attempts=job.step_attempts,
            input=dict(job.input),
            options=dict(job.options),
            checkpoint=dict(job.checkpoint),
            tenant_id=job.tenant_id,
            batch_id=job.batch_id,
            backend_token=tenant.backend_token if tenant else None,
        )


def _claim_job(session: Session, job_id: uuid.UUID, step: JobState, lease_s: float) -> Job | None:
    """The row-by-row claim: a job just admitted starts its first step; a job in another state
    (a duplicate message, a canceled job) or waiting for a later time is left alone; a job whose
    lease another worker holds is asked to be looked at again when that lease ends, so a worker
    that died holding it delays the job by one lease at most."""
    job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None:
        return None
    if job.state == JobState.ADMITTED.value and step == JobState.TOKEN:
        transition(session, job, JobState.TOKEN)
    if job.state != step.value:
        return None
    now = utcnow()
    if job.next_attempt_at is not None and job.next_attempt_at > now:
        return None
    if job.lease_expires_at is not None and job.lease_expires_at > now:
        job.next_attempt_at = job.lease_expires_at
        return None
    job.lease_expires_at = now + timedelta(seconds=lease_s)
    job.heartbeat_at = now
    job.next_attempt_at = None
    job.attempts += 1
    job.step_attempts += 1
    return job


def advance_to_next_step(
    connection: Connection,
    job_id: uuid.UUID,
    step: JobState,
    *,
    attempt: int,
    checkpoint: dict[str, Any],
    fields: dict[str, Any],
    message: str | None,
    latency_ms: int,
) -> bool:
    """Record a finished step and move the job to the next running step, in one UPDATE and
    one INSERT of its two events; False if the job left `step` meanwhile (canceled, or
    re-driven). The same writes as `transition` for a running target, without loading the row.
    """
    target = check_transition(step.value, next_step(step.value).value)
    if target not in RUNNING:
        raise ValueError(f"{step} is the last step: finish the job with `transition`")
    moved = connection.execute(
        update(JOBS)
        .where(JOBS.c.id == job_id, JOBS.c.state == step.value)
        .values(
            state=target.value,
            checkpoint=JOBS.c.checkpoint.op("||")(checkpoint) if checkpoint else JOBS.c.checkpoint,
            lease_expires_at=None,
            next_attempt_at=None,
            heartbeat_at=utcnow(),
            step_attempts=0,
            throttled_since=None,
            **fields,
        )
        .returning(JOBS.c.id)
    ).first()
    if moved is None:
        return False
    connection.execute(
        insert(JOB_EVENTS),
        [
            _event_row(job_id, step.value, "step_done", attempt, message, latency_ms=latency_ms),
            _state_event(job_id, step.value, target.value),
        ],
    )
    return True


def _event_row(
    job_id: uuid.UUID,
    step: str,
    kind: str,
    attempt: int,
    message: str | None,
    *,
    latency_ms: int | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "job_id": job_id,
        "step": step,
        "kind": kind,
        "attempt": attempt,
        "message": message,
        "http_status": None,
        "backend_code": None,
        "latency_ms": latency_ms,
        "data": data,
    }


def _state_event(job_id: uuid.UUID, previous: str, target: str) -> dict[str, Any]:
    """The event `transition` records for a state change, as a row to insert."""
    data = {"from": previous, "to": target}
    return _event_row(job_id, target, "state", 0, f"{previous} -> {target}", data=data)


def extend_leases(
    connection: Session | Connection, held: list[tuple[uuid.UUID, str]], lease_s: float
) -> None:
    """Heartbeat from long steps (streams, downloads): every lease a process holds at once,
    given as (job id, step). A lease is renewed only while its job is still in that step and
    leased: a renewal that races the step's end must not lease the job's next step to nobody."""
    now = utcnow()
    connection.execute(
        update(JOBS)
        .where(tuple_(JOBS.c.id, JOBS.c.state).in_(held), JOBS.c.lease_expires_at.is_not(None))
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
    )


def merge_checkpoint(
    connection: Session | Connection, job_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Record part of a step's progress at once (before a side effect that must not repeat).
    A Core statement on the table: an ORM update would evaluate it against the session first."""
    merged = JOBS.c.checkpoint.op("||")(values)
    connection.execute(update(JOBS).where(JOBS.c.id == job_id).values(checkpoint=merged))


def due_jobs(session: Session, limit: int) -> list[Job]:
    """Jobs whose wait is over, locked so that two claimers never take the same one."""
    statement = (
        select(Job)
        .where(Job.next_attempt_at <= utcnow(), Job.state.not_in([s.value for s in FINAL]))
        .order_by(Job.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def stale_jobs(session: Session, stale_before: datetime, limit: int) -> list[Job]:
    """Running jobs nobody has touched for a while and nobody holds: lost messages."""
    now = utcnow()
    statement = (
        select(Job)
        .where(
            Job.state.in_([s.value for s in RUNNING]),
            Job.next_attempt_at.is_(None),
            or_(Job.lease_expires_at.is_(None), Job.lease_expires_at < now),
            or_(Job.heartbeat_at.is_(None), Job.heartbeat_at < stale_before),
        )
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


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


def queued_for_admission(session: Session, tenant_id: uuid.UUID, limit: int) -> list[Job]:
    """The tenant's next jobs: higher priority first; batches of one priority interleaved."""
    statement = (
        select(Job)
        .where(Job.tenant_id == tenant_id, Job.state == JobState.QUEUED.value)
        .order_by(Job.priority.desc(), Job.item_index, Job.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return list(session.scalars(statement))


def refresh_batch_status(session: Session, batch_id: uuid.UUID) -> Batch | None:
    """Give the batch its final status if its last job just finished; returns it if so."""
    batch = session.scalars(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
    if batch is None or batch.finished_at is not None:
        return None
    finish_if_done(session, batch)
    return batch if batch.finished_at is not None else None


def pause_tenant(session: Session, tenant: Tenant, reason: str) -> None:
    """Out of credits: stop admitting the tenant's jobs and show its open batches as paused."""
    if tenant.paused_reason is None:
        tenant.paused_reason = reason
        tenant.paused_at = utcnow()
    session.execute(
        update(Batch)
        .where(
            Batch.tenant_id == tenant.id,
            Batch.status.in_([BatchStatus.QUEUED.value, BatchStatus.RUNNING.value]),
        )
        .values(status=BatchStatus.PAUSED.value)
    )


def reopen_unpaused_batches(session: Session) -> None:
    """Batches shown as paused whose tenant is no longer paused are running again."""
    paused_tenants = select(Tenant.id).where(Tenant.paused_reason.is_not(None))
    session.execute(
        update(Batch)
        .where(Batch.status == BatchStatus.PAUSED.value, Batch.tenant_id.not_in(paused_tenants))
        .values(status=BatchStatus.RUNNING.value)
    )
