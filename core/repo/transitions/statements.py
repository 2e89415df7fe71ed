"""Set-based statements on a plain connection for the hot path: claiming a step (which hands out
the lease token), advancing to the next step, checkpoint saves and lease renewals, each fenced
by the token."""

import logging
import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Insert,
    Update,
    bindparam,
    case,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from core.models import Job
from core.repo.jobs import utcnow
from core.repo.transitions.base import (
    JOB_EVENTS,
    JOBS,
    NO_LEASE,
    TENANT_TOKEN,
    LeaseLost,
    state_event,
)
from core.repo.transitions.locked import check_fields
from core.states import RUNNING, JobState, check_transition, next_step

log = logging.getLogger("core.transitions")


@dataclass(frozen=True)
class Claim:
    """What a worker needs to run the step it now leases: its lease token, the job's data and
    its tenant's token."""

    lease: uuid.UUID
    step_attempts: int
    input: dict[str, Any]
    options: dict[str, Any]
    checkpoint: dict[str, Any]
    tenant_id: uuid.UUID
    batch_id: uuid.UUID
    backend_token: str | None


@cache
def _claim_statement(step: JobState) -> Update:
    """The claim of `step` as one UPDATE ... RETURNING, built once per process: building and
    hashing the statement cost more CPU than running it (bench figure 1)."""
    entry = JobState.ADMITTED.value if step == JobState.TOKEN else step.value
    now = bindparam("now", type_=JOBS.c.heartbeat_at.type)
    before = (
        select(JOBS.c.id, JOBS.c.state)
        .where(JOBS.c.id == bindparam("job_id", type_=JOBS.c.id.type))
        .with_for_update()
        .subquery("before")
    )
    return (
        update(JOBS)
        .where(
            JOBS.c.id == before.c.id,
            or_(JOBS.c.state == step.value, JOBS.c.state == entry),
            or_(JOBS.c.next_attempt_at.is_(None), JOBS.c.next_attempt_at <= now),
            or_(JOBS.c.lease_expires_at.is_(None), JOBS.c.lease_expires_at <= now),
        )
        .values(
            state=step.value,
            lease_token=bindparam("lease", type_=JOBS.c.lease_token.type),
            lease_expires_at=bindparam("expires", type_=JOBS.c.lease_expires_at.type),
            heartbeat_at=now,
            next_attempt_at=None,
            attempts=JOBS.c.attempts + 1,
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
    )


def claim_step(
    connection: Connection, job_id: uuid.UUID, step: JobState, lease_s: float
) -> Claim | None:
    """Take the lease on a job's current step with a new token, or None when the job is not
    ours to run now. One UPDATE ... RETURNING; a job whose lease another worker holds is asked
    to be looked at again when that lease ends, so a dead worker delays it by one lease at most.
    """
    now = utcnow()
    lease = uuid.uuid4()
    claimed = connection.execute(
        _claim_statement(step),
        {
            "job_id": job_id,
            "now": now,
            "lease": lease,
            "expires": now + timedelta(seconds=lease_s),
        },
    ).first()
    if claimed is None:
        # Held by a live lease: look again when it ends (no-op for jobs in another state).
        connection.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.state == step.value, JOBS.c.lease_expires_at > now)
            .values(next_attempt_at=JOBS.c.lease_expires_at)
        )
        return None
    previous, *fields = claimed
    if previous != step.value:
        check_transition(previous, step.value)
        connection.execute(insert(JOB_EVENTS), state_event(job_id, previous, step.value))
    return Claim(lease, *fields)


EVENT_COLUMNS = ("job_id", "step", "kind", "attempt", "message", "latency_ms", "data")


@cache
def _advance_statement(
    step: JobState, fenced: bool, merges: bool, fields: tuple[str, ...]
) -> Insert:
    """A finished step moves its job to the next one and writes its two events, in one
    statement built once per process: INSERT of the events from an UPDATE ... RETURNING (no
    row moved, no event written, nothing returned)."""
    target = next_step(step.value)
    fence = [JOBS.c.id == bindparam("job_id", type_=JOBS.c.id.type), JOBS.c.state == step.value]
    if fenced:
        fence.append(JOBS.c.lease_token == bindparam("lease", type_=JOBS.c.lease_token.type))
    checkpoint: ColumnElement[Any] = JOBS.c.checkpoint
    if merges:
        checkpoint = checkpoint.op("||")(bindparam("checkpoint", type_=JOBS.c.checkpoint.type))
    moved = (
        update(JOBS)
        .where(*fence)
        .values(
            state=target.value,
            checkpoint=checkpoint,
            next_attempt_at=None,
            heartbeat_at=bindparam("now", type_=JOBS.c.heartbeat_at.type),
            step_attempts=0,
            throttled_since=None,
            **NO_LEASE,
            **{name: bindparam(f"field_{name}", type_=JOBS.c[name].type) for name in fields},
        )
        .returning(JOBS.c.id)
        .cte("moved")
    )
    data = JOB_EVENTS.c.data.type
    done = select(
        moved.c.id,
        literal(step.value),
        literal("step_done"),
        bindparam("attempt", type_=JOB_EVENTS.c.attempt.type),
        bindparam("message", type_=JOB_EVENTS.c.message.type),
        bindparam("latency_ms", type_=JOB_EVENTS.c.latency_ms.type),
        literal(None, type_=data),
    )
    changed = select(
        moved.c.id,
        literal(target.value),
        literal("state"),
        literal(0),
        literal(f"{step.value} -> {target.value}"),
        literal(None, type_=JOB_EVENTS.c.latency_ms.type),
        literal({"from": step.value, "to": target.value}, type_=data),
    )
    return (
        insert(JOB_EVENTS)
        .from_select(EVENT_COLUMNS, union_all(done, changed))
        .returning(JOB_EVENTS.c.job_id)
    )


def advance_to_next_step(
    connection: Connection,
    job_id: uuid.UUID,
    step: JobState,
    lease: uuid.UUID | None,
    *,
    attempt: int,
    checkpoint: dict[str, Any],
    fields: dict[str, Any],
    message: str | None,
    latency_ms: int,
) -> bool:
    """Record a finished step and move the job to the next running step with its two events,
    one statement; False (logged) if the lease is no longer current."""
    target = check_transition(step.value, next_step(step.value).value)
    check_fields(fields)
    if target not in RUNNING:
        raise ValueError(f"{step} is the last step: finish the job with `transition`")
    statement = _advance_statement(step, lease is not None, bool(checkpoint), tuple(fields))
    values = {f"field_{name}": value for name, value in fields.items()}
    moved = connection.execute(
        statement,
        {
            "job_id": job_id,
            "lease": lease,
            "checkpoint": checkpoint,
            "now": utcnow(),
            "attempt": attempt,
            "message": message,
            "latency_ms": latency_ms,
            **values,
        },
    ).first()
    if moved is None:
        log.warning("job %s: dropped the %s outcome of a stale lease", job_id, step)
        return False
    return True


_MERGE_CHECKPOINT = (
    update(JOBS)
    .where(
        JOBS.c.id == bindparam("job_id", type_=JOBS.c.id.type),
        JOBS.c.lease_token == bindparam("lease", type_=JOBS.c.lease_token.type),
    )
    .values(
        checkpoint=JOBS.c.checkpoint.op("||")(bindparam("values", type_=JOBS.c.checkpoint.type))
    )
    .returning(JOBS.c.id)
)
"""A checkpoint save, built once: steps save before every side effect."""


def merge_checkpoint(
    connection: Session | Connection, job_id: uuid.UUID, lease: uuid.UUID, values: dict[str, Any]
) -> None:
    """Record part of a step's progress now (before a side effect that must not repeat);
    raises `LeaseLost` (nothing written) if the lease is no longer current."""
    saved = connection.execute(
        _MERGE_CHECKPOINT, {"job_id": job_id, "lease": lease, "values": values}
    ).first()
    if saved is None:
        log.warning("job %s: dropped a checkpoint save of a stale lease", job_id)
        raise LeaseLost(f"job {job_id}: the lease {lease} is no longer current")


def merge_queued_checkpoint(
    connection: Session | Connection, job_id: uuid.UUID, values: dict[str, Any]
) -> bool:
    """Record progress made for a job no worker holds yet (inputs kept while it is queued);
    nothing, and False, once it has been claimed: its own steps record their progress then."""
    merged = JOBS.c.checkpoint.op("||")(values)
    saved = connection.execute(
        update(JOBS)
        .where(
            JOBS.c.id == job_id,
            JOBS.c.state == JobState.QUEUED.value,
            JOBS.c.lease_token.is_(None),
        )
        .values(checkpoint=merged)
        .returning(JOBS.c.id)
    ).first()
    return saved is not None


def locked_job(session: Session, job_id: uuid.UUID) -> Job | None:
    """The job, locked for a change of its state (the lock order: jobs first)."""
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()


def extend_leases(
    connection: Session | Connection, held: list[tuple[uuid.UUID, uuid.UUID]], lease_s: float
) -> int:
    """Heartbeat from long steps: every lease a process holds, as (job id, lease token). A
    lease no longer current is not renewed (the step ended, or the job was canceled)."""
    now = utcnow()
    current = (
        select(JOBS.c.id)
        .where(tuple_(JOBS.c.id, JOBS.c.lease_token).in_(held))
        .order_by(JOBS.c.id)
        .with_for_update()
        .subquery()
    )
    renewed = connection.execute(
        update(JOBS)
        .where(JOBS.c.id == current.c.id)
        .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_s))
        .returning(JOBS.c.id)
    ).all()
    if len(renewed) < len(held):
        log.info("%d of %d leases were no longer current", len(held) - len(renewed), len(held))
    return len(renewed)
