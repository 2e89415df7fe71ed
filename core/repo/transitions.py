"""The one owner of a job's state: every change of `jobs.state`, and what follows a final state.

Fencing: a claim hands the worker a fresh lease token; every write of that worker (its outcome,
checkpoint saves, lease renewals) carries it, and a write whose token is no longer current
changes nothing, is logged and dropped. Cancel and retry clear the lease.

Lock order: job rows first (several at once in id order), then their tenant, then their batch.
Every function here keeps it, so two of them never wait on each other in a circle.
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    bindparam,
    case,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from core.db import HotStatement
from core.models import Batch, Job, JobEvent, Tenant
from core.payloads import job_data
from core.repo.batches import (
    FINAL_BATCH,
    finish_if_done,
    has_render_in_flight,
    render_in_flight,
    reopen,
)
from core.repo.deliveries import add_batch_completed, add_delivery
from core.repo.jobs import RETRY_FORGETS, forget_for_retry, utcnow
from core.states import (
    FINAL,
    RUNNING,
    WAITING,
    BatchStatus,
    JobState,
    check_transition,
    next_step,
)

log = logging.getLogger("core.transitions")

JOBS = cast(Table, Job.__table__)
JOB_EVENTS = cast(Table, JobEvent.__table__)
TENANT_TOKEN = select(Tenant.backend_token).where(Tenant.id == JOBS.c.tenant_id).scalar_subquery()
FINAL_VALUES = [state.value for state in FINAL]
JOB_WEBHOOKS = {JobState.SUCCEEDED: "job.succeeded", JobState.FAILED: "job.failed"}
NO_LEASE: dict[str, Any] = {"lease_expires_at": None, "lease_token": None}


class LeaseLost(Exception):
    """The worker's lease token is no longer the job's: its write was dropped (the job was
    canceled, retried, or its lease ran out and another worker took the step)."""


# -- events: one builder -------------------------------------------------------------------


def event_row(
    job_id: uuid.UUID,
    step: str,
    kind: str,
    attempt: int,
    message: str | None,
    *,
    http_status: int | None = None,
    backend_code: int | None = None,
    latency_ms: int | None = None,
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A job_events row, for a bulk insert or for `add_event`."""
    return {
        "job_id": job_id,
        "step": str(step),
        "kind": kind,
        "attempt": attempt,
        "message": message,
        "http_status": http_status,
        "backend_code": backend_code,
        "latency_ms": latency_ms,
        "data": data,
    }


def state_event(
    job_id: uuid.UUID, previous: str, target: str, message: str | None = None, **data: Any
) -> dict[str, Any]:
    """The event of a state change."""
    body = {"from": str(previous), "to": str(target), **data}
    text = message or f"{previous} -> {target}"
    return event_row(job_id, target, "state", 0, text, data=body)


def state_event_select(job_id: ColumnElement[Any], previous: str, target: str) -> Select[Any]:
    """`state_event` as SQL, for a statement that inserts the events of the rows it moved:
    `INSERT INTO job_events ... SELECT` from its `UPDATE ... RETURNING`."""
    return select(
        job_id,
        literal(target),
        literal("state"),
        literal(0),
        literal(f"{previous} -> {target}"),
        null(),
        literal({"from": previous, "to": target}, type_=JOB_EVENTS.c.data.type),
    )


def add_event(
    session: Session, job: Job, kind: str, message: str | None = None, **fields: Any
) -> None:
    """An event about a loaded job, at its current step and attempt unless told."""
    step = fields.pop("step", None) or job.state
    session.add(JobEvent(**event_row(job.id, step, kind, job.step_attempts, message, **fields)))


# -- the ORM path: a job already locked in the session -------------------------------------


def transition(
    session: Session,
    job: Job,
    target: JobState | str,
    *,
    message: str | None = None,
    error_code: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Move a locked job along the state machine (raises `IllegalTransition`) with its event."""
    previous = job.state
    state = check_transition(previous, str(target))
    now = utcnow()
    if state != previous and state in RUNNING and previous != JobState.RETRY_WAIT:
        job.step_attempts = 0  # a new step; coming back from retry_wait keeps the count
    job.state = state
    job.heartbeat_at = now
    if state in FINAL or state == JobState.QUEUED:
        job.lease_expires_at = None
        job.lease_token = None
    if state in FINAL:
        job.finished_at = now
        job.next_attempt_at = None
    if state == JobState.FAILED:
        job.error_code = error_code or job.error_code or "failed"
        job.error_message = message or job.error_message
    if state == JobState.QUEUED:
        job.checkpoint = forget_for_retry(job.checkpoint)
        job.error_code = job.error_message = job.bind_url = job.resume_state = None
        job.finished_at = job.next_attempt_at = None
    if state == JobState.ADMITTED and job.started_at is None:
        job.started_at = now
    session.add(JobEvent(**state_event(job.id, previous, state, message, **(data or {}))))


def set_fields(job: Job, fields: dict[str, Any]) -> None:
    """Record a step's results on the job's own columns (output, timeline); never its state."""
    _check_fields(fields)
    for name, value in fields.items():
        setattr(job, name, value)


def _check_fields(fields: dict[str, Any]) -> None:
    if owned := fields.keys() & {"state", "resume_state", "lease_token", "lease_expires_at"}:
        raise ValueError(f"a step's fields may not set {sorted(owned)}: transitions do")


def give_back_attempt(job: Job) -> None:
    """The rule for attempts: a claim counts one; a wait or a backoff that says nothing about
    the step itself (429, our own pacing) gives it back; a new step starts again from zero."""
    job.step_attempts = max(0, job.step_attempts - 1)


def leased_job(
    session: Session, job_id: uuid.UUID, step: JobState, lease: uuid.UUID | None
) -> Job | None:
    """Lock the job for recording the outcome of `step` under `lease`, and release the lease;
    None (logged) when the lease is no longer current: the outcome is dropped."""
    job = session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None:
        return None
    if job.state != step or (lease is not None and job.lease_token != lease):
        log.warning(
            "job %s: dropped the %s outcome of a stale lease (job now %s)", job_id, step, job.state
        )
        return None
    job.lease_expires_at = None
    job.lease_token = None
    job.next_attempt_at = None
    return job


def wait(job: Job, delay_s: float) -> None:
    """The step is not done and not failing (render polling, state verification)."""
    give_back_attempt(job)
    job.next_attempt_at = utcnow() + timedelta(seconds=delay_s)


def back_off(
    session: Session, job: Job, step: JobState, delay_s: float, message: str, *, counts: bool
) -> None:
    """The step failed in a way worth trying again after `delay_s`."""
    if not counts:
        give_back_attempt(job)
    transition(session, job, JobState.RETRY_WAIT, message=message)
    job.resume_state = step
    job.next_attempt_at = utcnow() + timedelta(seconds=delay_s)


def wait_for_credits(
    session: Session, job: Job, step: JobState, message: str, bind_url: str | None
) -> None:
    transition(session, job, JobState.WAITING_CREDITS, message=message)
    job.resume_state = step
    job.bind_url = bind_url
    job.error_message = message


def after_final(session: Session, job: Job, grace_s: float) -> list[uuid.UUID]:
    """What follows a final state: the batch's status and the webhook rows (`job.*`, and
    `batch.completed` exactly when this job's change finished the batch). Returns the new
    deliveries' ids, to send after commit. Locks the batch after the job (the lock order)."""
    session.flush()
    return _after_final(session, job.batch_id, JobState(job.state), lambda: job, grace_s)


def _after_final(
    session: Session,
    batch_id: uuid.UUID,
    state: JobState,
    load_job: Callable[[], Job | None],
    grace_s: float,
) -> list[uuid.UUID]:
    connection, key = session.connection(), {"batch_id": batch_id}
    locked = _LOCK_BATCH.first(connection, key)  # after the job: the lock order
    if locked is None:
        return []
    finished_at, webhook_url = locked
    if not webhook_url and (finished_at is not None or _RUNNING_JOB.first(connection, key)):
        return []  # the common case, nothing to write: read without loading the batch
    batch = session.scalars(select(Batch).where(Batch.id == batch_id).with_for_update()).first()
    if batch is None:
        return []
    finished_now = False
    if batch.finished_at is None:
        finish_if_done(session, batch)
        finished_now = batch.finished_at is not None
    if not batch.webhook_url:
        return []
    ids = []
    event = JOB_WEBHOOKS.get(state)
    job = load_job() if event is not None else None
    if event is not None and job is not None:
        delivery = add_delivery(
            session,
            tenant_id=batch.tenant_id,
            batch_id=batch.id,
            job_id=job.id,
            event=event,
            url=batch.webhook_url,
            data=job_data(job),
            grace_s=grace_s,
        )
        ids.append(delivery.id)
    if finished_now:
        ids.append(add_batch_completed(session, batch, grace_s).id)
    return ids


BATCHES = cast(Table, Batch.__table__)
_LOCK_BATCH = HotStatement(
    select(BATCHES.c.finished_at, BATCHES.c.webhook_url)
    .where(BATCHES.c.id == bindparam("batch_id", type_=BATCHES.c.id.type))
    .with_for_update()
)
_RUNNING_JOB = HotStatement(
    select(JOBS.c.id)
    .where(
        JOBS.c.batch_id == bindparam("batch_id", type_=JOBS.c.batch_id.type),
        *(JOBS.c.state != final for final in FINAL_VALUES),  # no list: compiled once as is
    )
    .limit(1)
)
"""Built once: what follows every job's end reads its batch with these (one index probe)."""


@dataclass(frozen=True)
class Canceled:
    count: int
    rendering: list[uuid.UUID]
    """The jobs canceled with a render in flight: a worker cancels those on the backend."""


def cancel_job(session: Session, job: Job, message: str) -> Canceled:
    """Cancel a locked, not final job; its lease ends, so its worker's writes are dropped."""
    rendering = [job.id] if has_render_in_flight(job.checkpoint) else []
    transition(session, job, JobState.CANCELED, message=message)
    after_final(session, job, grace_s=0)
    return Canceled(1, rendering)


def retry_job(session: Session, job: Job, message: str) -> bool:
    """Put a locked failed or canceled job back in the queue; True if that reopened its
    finished batch (whose `batch.completed` will then be sent again when it ends)."""
    transition(session, job, JobState.QUEUED, message=message)
    session.flush()
    batch = session.scalars(select(Batch).where(Batch.id == job.batch_id).with_for_update()).first()
    if batch is None:
        return False
    reopened = batch.finished_at is not None
    reopen(batch)
    return reopened


def admit_next(session: Session, tenant_id: uuid.UUID, room: int) -> list[uuid.UUID]:
    """Up to `room` of the tenant's queued jobs enter the pipeline (higher priority first,
    batches of one priority interleaved by item index), with their events, in one statement;
    their batches are running. The caller holds the tenant's admission lock."""
    if room <= 0:
        return []
    admitted = session.execute(_ADMIT, {"admitting": tenant_id, "room": room, "now": utcnow()})
    rows = admitted.all()
    batch_ids = sorted({batch_id for _, batch_id in rows})
    if batch_ids:
        locked = (
            select(Batch.id)
            .where(Batch.id.in_(batch_ids), Batch.status == BatchStatus.QUEUED.value)
            .order_by(Batch.id)
            .with_for_update()  # after the jobs, in id order: the lock order
        )
        session.execute(
            update(Batch).where(Batch.id.in_(locked)).values(status=BatchStatus.RUNNING.value)
        )
    return [job_id for job_id, _ in rows]


def _admit_statement() -> Select[Any]:
    check_transition(JobState.QUEUED.value, JobState.ADMITTED.value)
    now = bindparam("now", type_=JOBS.c.heartbeat_at.type)
    picked = (
        select(JOBS.c.id)
        .where(
            # not "tenant_id": SQLAlchemy would also SET a column a parameter is named after
            JOBS.c.tenant_id == bindparam("admitting", type_=JOBS.c.tenant_id.type),
            JOBS.c.state == JobState.QUEUED.value,
        )
        .order_by(JOBS.c.priority.desc(), JOBS.c.item_index, JOBS.c.created_at)
        .limit(bindparam("room"))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    moved = (
        update(JOBS)
        .where(JOBS.c.id == picked.c.id)
        .values(
            state=JobState.ADMITTED.value,
            step_attempts=0,
            heartbeat_at=now,
            started_at=func.coalesce(JOBS.c.started_at, now),
        )
        .returning(JOBS.c.id, JOBS.c.batch_id)
        .cte("moved")
    )
    entered = insert(JOB_EVENTS).from_select(
        EVENT_COLUMNS,
        state_event_select(moved.c.id, JobState.QUEUED.value, JobState.ADMITTED.value),
    )
    return select(moved.c.id, moved.c.batch_id).add_cte(entered.cte("entered"))


def resume_due(session: Session, limit: int) -> list[tuple[uuid.UUID, JobState]]:
    """Jobs whose wait is over go back to their step (SKIP LOCKED: many claimers are safe), up
    to `limit` of each kind; returns (job id, state) for each, to send again after commit. A
    running step's wait (a render's next poll, the most common by far) ends in one statement;
    a job waiting out a backoff or for credits changes state, with its event."""
    now = utcnow()
    running = session.execute(
        _RESUME_RUNNING, {"now": now, "limit": limit, "running": RUNNING_VALUES}
    ).all()
    ready = [(job_id, JobState(state)) for job_id, state in running]
    waiting = session.scalars(
        select(Job)
        .where(Job.next_attempt_at <= now, Job.state.in_([state.value for state in WAITING]))
        .order_by(Job.next_attempt_at)
        .limit(limit)  # a limit of each kind's own: neither kind waits behind the other
        .with_for_update(skip_locked=True)
    )
    for job in waiting:
        transition(session, job, job.resume_state or JobState.TOKEN)
        job.resume_state = None
        job.error_message = None  # the wait's reason no longer holds
        job.next_attempt_at = None
        ready.append((job.id, JobState(job.state)))
    return ready


RUNNING_VALUES = [state.value for state in RUNNING]
_DUE = (
    select(JOBS.c.id)
    .where(
        JOBS.c.next_attempt_at <= bindparam("now", type_=JOBS.c.next_attempt_at.type),
        JOBS.c.state.in_(bindparam("running", expanding=True)),
    )
    .order_by(JOBS.c.next_attempt_at)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
    .cte("due")
)
_RESUME_RUNNING = (
    update(JOBS)
    .where(JOBS.c.id == _DUE.c.id)
    .values(next_attempt_at=None, heartbeat_at=bindparam("now"))
    .returning(JOBS.c.id, JOBS.c.state)
)
"""Built once: the claimer's statement for running steps whose wait is over."""


# -- set-based statements on a connection ----------------------------------------------------


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
def _claim_statement(step: JobState) -> HotStatement:
    """The claim of `step` as one statement, built once per process: an UPDATE ... RETURNING
    of the lease, with the event of a job entering the step inserted from it (a job entering
    its first step from `admitted`). One statement is one transaction on its own, so a claim
    needs no BEGIN and COMMIT around it."""
    entry = JobState.ADMITTED if step == JobState.TOKEN else step
    check_transition(entry.value, step.value)
    now = bindparam("now", type_=JOBS.c.heartbeat_at.type)
    before = (
        select(JOBS.c.id, JOBS.c.state)
        .where(JOBS.c.id == bindparam("job_id", type_=JOBS.c.id.type))
        .with_for_update()
        .subquery("before")
    )
    claimed = (
        update(JOBS)
        .where(
            JOBS.c.id == before.c.id,
            or_(JOBS.c.state == step.value, JOBS.c.state == entry.value),
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
            JOBS.c.id,
            before.c.state.label("previous"),
            JOBS.c.step_attempts,
            JOBS.c.input,
            JOBS.c.options,
            JOBS.c.checkpoint,
            JOBS.c.tenant_id,
            JOBS.c.batch_id,
            TENANT_TOKEN.label("backend_token"),
        )
        .cte("claimed")
    )
    answer = select(*[column for column in claimed.c if column.name != "id"])
    if entry == step:
        return HotStatement(answer)
    entered = (
        insert(JOB_EVENTS)
        .from_select(
            EVENT_COLUMNS,
            state_event_select(claimed.c.id, entry.value, step.value).where(
                claimed.c.previous == entry.value
            ),
        )
        .cte("entered")
    )
    return HotStatement(answer.add_cte(entered))


def claim_step(
    connection: Connection, job_id: uuid.UUID, step: JobState, lease_s: float
) -> Claim | None:
    """Take the lease on a job's current step with a new token, or None when the job is not
    ours to run now. One statement; a job whose lease another worker holds is asked to be
    looked at again when that lease ends, so a dead worker delays it by one lease at most.
    """
    now = utcnow()
    lease = uuid.uuid4()
    claimed = _claim_statement(step).first(
        connection,
        {
            "job_id": job_id,
            "now": now,
            "lease": lease,
            "expires": now + timedelta(seconds=lease_s),
        },
    )
    if claimed is None:
        # Held by a live lease: look again when it ends (no-op for jobs in another state).
        connection.execute(
            update(JOBS)
            .where(JOBS.c.id == job_id, JOBS.c.state == step.value, JOBS.c.lease_expires_at > now)
            .values(next_attempt_at=JOBS.c.lease_expires_at)
        )
        return None
    _previous, *fields = claimed
    return Claim(lease, *fields)


EVENT_COLUMNS = ("job_id", "step", "kind", "attempt", "message", "latency_ms", "data")


def _final_or_running_values(target: JobState) -> dict[str, Any]:
    """A final job gets its end time and keeps its last attempt count; a new step starts its
    attempts from zero."""
    if target in FINAL:
        return {"finished_at": bindparam("now", type_=JOBS.c.finished_at.type)}
    return {"step_attempts": 0}


@cache
def _advance_statement(
    step: JobState, target: JobState, fenced: bool, merges: bool, fields: tuple[str, ...]
) -> HotStatement:
    """A finished step moves its job to the next one and writes its two events, in one
    statement built once per process: INSERT of the events from an UPDATE ... RETURNING (no
    row moved, no event written, nothing returned)."""
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
            next_attempt_at=bindparam("next_attempt_at", type_=JOBS.c.next_attempt_at.type),
            heartbeat_at=bindparam("now", type_=JOBS.c.heartbeat_at.type),
            throttled_since=None,
            **NO_LEASE,
            **_final_or_running_values(target),
            **{name: bindparam(f"field_{name}", type_=JOBS.c[name].type) for name in fields},
        )
        .returning(JOBS.c.id, JOBS.c.batch_id)
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
    changed = state_event_select(moved.c.id, step.value, target.value)
    events = insert(JOB_EVENTS).from_select(EVENT_COLUMNS, union_all(done, changed))
    return HotStatement(select(moved.c.batch_id).add_cte(events.cte("events")))


@dataclass(frozen=True)
class StepDone:
    """What a finished step records with its move: its attempt, checkpoint, fields, event."""

    attempt: int
    checkpoint: dict[str, Any]
    fields: dict[str, Any]
    message: str | None
    latency_ms: int


def advance_to_next_step(
    connection: Connection,
    job_id: uuid.UUID,
    step: JobState,
    lease: uuid.UUID | None,
    done: StepDone,
    *,
    next_in_s: float | None = None,
) -> bool:
    """Record a finished step and move the job to the next running step with its two events,
    one statement; False (logged) if the lease is no longer current. With `next_in_s` the next
    step is due that many seconds from now (the claimer sends it then), else at once."""
    target = next_step(step.value)
    if target not in RUNNING:
        raise ValueError(f"{step} is the last step: finish the job with `finish_step`")
    return _move(connection, job_id, step, target, lease, done, next_in_s) is not None


def finish_step(
    session: Session,
    job_id: uuid.UUID,
    step: JobState,
    target: JobState,
    lease: uuid.UUID | None,
    done: StepDone,
    *,
    grace_s: float,
) -> list[uuid.UUID] | None:
    """Record the last step done and end the job in `target` (a final state) with its two
    events, one statement, then bring its batch up to date (`after_final`) in the same
    transaction; the new webhook deliveries' ids, or None (logged) if the lease is stale."""
    if target not in FINAL:
        raise ValueError(f"{target} is not a final state: advance the job instead")
    batch_id = _move(session.connection(), job_id, step, target, lease, done, None)
    if batch_id is None:
        return None
    return _after_final(session, batch_id, target, lambda: session.get(Job, job_id), grace_s)


def _move(
    connection: Connection,
    job_id: uuid.UUID,
    step: JobState,
    target: JobState,
    lease: uuid.UUID | None,
    done: StepDone,
    next_in_s: float | None,
) -> uuid.UUID | None:
    """One statement: the job from `step` to `target` under `lease`, with the step's checkpoint
    and fields and its two events; the job's batch id, or None if the lease is stale."""
    check_transition(step.value, target.value)
    _check_fields(done.fields)
    statement = _advance_statement(
        step, target, lease is not None, bool(done.checkpoint), tuple(done.fields)
    )
    now = utcnow()
    moved = statement.first(
        connection,
        {
            "job_id": job_id,
            "lease": lease,
            "checkpoint": done.checkpoint,
            "now": now,
            "next_attempt_at": None if next_in_s is None else now + timedelta(seconds=next_in_s),
            "attempt": done.attempt,
            "message": done.message,
            "latency_ms": done.latency_ms,
            **{f"field_{name}": value for name, value in done.fields.items()},
        },
    )
    if moved is None:
        log.warning("job %s: dropped the %s outcome of a stale lease", job_id, step)
        return None
    return cast(uuid.UUID, moved[0])


_MERGE_CHECKPOINT = HotStatement(
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
    connection: Connection, job_id: uuid.UUID, lease: uuid.UUID, checkpoint: dict[str, Any]
) -> None:
    """Record part of a step's progress now (before a side effect that must not repeat);
    raises `LeaseLost` (nothing written) if the lease is no longer current."""
    saved = _MERGE_CHECKPOINT.first(
        connection, {"job_id": job_id, "lease": lease, "values": checkpoint}
    )
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


_ADMIT = _admit_statement()
"""Built once: admission's statement, run for every pass that admits jobs."""
