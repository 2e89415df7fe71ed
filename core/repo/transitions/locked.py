"""Changes of a job already loaded and locked in the caller's session (the ORM path): a step's
outcome, cancel and retry of one job, admission, due waits, and what follows a final state."""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Batch, Job, JobEvent
from core.payloads import job_data
from core.repo.batches import finish_if_done, has_render_in_flight, reopen
from core.repo.deliveries import add_batch_completed, add_delivery
from core.repo.jobs import forget_for_retry, utcnow
from core.repo.transitions.base import FINAL_VALUES, JOB_WEBHOOKS, state_event
from core.states import FINAL, RUNNING, WAITING, BatchStatus, JobState, check_transition

log = logging.getLogger("core.transitions")


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
    check_fields(fields)
    for name, value in fields.items():
        setattr(job, name, value)


def check_fields(fields: dict[str, Any]) -> None:
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
    batch = session.scalars(select(Batch).where(Batch.id == job.batch_id).with_for_update()).first()
    if batch is None:
        return []
    finished_now = False
    if batch.finished_at is None:
        finish_if_done(session, batch)
        finished_now = batch.finished_at is not None
    if not batch.webhook_url:
        return []
    ids = []
    event = JOB_WEBHOOKS.get(JobState(job.state))
    if event is not None:
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


def admit(session: Session, jobs: Sequence[Job]) -> None:
    """Queued jobs (locked by the caller) enter the pipeline; their batches are running."""
    for job in jobs:
        transition(session, job, JobState.ADMITTED)
    session.flush()
    batch_ids = sorted({job.batch_id for job in jobs})
    for batch in session.scalars(
        select(Batch).where(Batch.id.in_(batch_ids)).order_by(Batch.id).with_for_update()
    ):
        if batch.status == BatchStatus.QUEUED:
            batch.status = BatchStatus.RUNNING.value


def resume_due(session: Session, limit: int) -> list[tuple[uuid.UUID, JobState]]:
    """Jobs whose wait is over go back to their step (SKIP LOCKED: many claimers are safe);
    returns (job id, state) for each, to send again after commit."""
    due = session.scalars(
        select(Job)
        .where(Job.next_attempt_at <= utcnow(), Job.state.not_in(FINAL_VALUES))
        .order_by(Job.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    ready = []
    for job in due:
        if job.state in WAITING:
            transition(session, job, job.resume_state or JobState.TOKEN)
            job.resume_state = None
            job.error_message = None  # the wait's reason no longer holds
        job.next_attempt_at = None
        job.heartbeat_at = utcnow()
        ready.append((job.id, JobState(job.state)))
    return ready
