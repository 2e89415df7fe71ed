"""Job writes shared by the API and the workers: transitions, events, checkpoints."""

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Job, JobEvent
from core.states import FINAL, RUNNING, JobState, check_transition


def utcnow() -> datetime:
    return datetime.now(UTC)


def get_job_for_update(session: Session, job_id: uuid.UUID) -> Job | None:
    """Lock a job row for the rest of the transaction (short transactions only)."""
    return session.scalars(select(Job).where(Job.id == job_id).with_for_update()).first()


def add_event(
    session: Session,
    job: Job,
    kind: str,
    message: str | None = None,
    *,
    step: str | None = None,
    http_status: int | None = None,
    backend_code: int | None = None,
    latency_ms: int | None = None,
    data: dict[str, Any] | None = None,
) -> JobEvent:
    event = JobEvent(
        job_id=job.id,
        step=step or job.state,
        kind=kind,
        attempt=job.step_attempts,
        message=message,
        http_status=http_status,
        backend_code=backend_code,
        latency_ms=latency_ms,
        data=data,
    )
    session.add(event)
    return event


def transition(
    session: Session,
    job: Job,
    target: JobState | str,
    *,
    message: str | None = None,
    error_code: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Move a job along the state machine (raises `IllegalTransition`) and record an event."""
    previous = job.state
    state = check_transition(previous, str(target))
    now = utcnow()
    if state != previous and state in RUNNING and previous != JobState.RETRY_WAIT:
        job.step_attempts = 0  # a new step; coming back from retry_wait keeps the count
    job.state = state.value
    job.heartbeat_at = now
    if state in FINAL:
        job.finished_at = now
        job.next_attempt_at = None
    if state == JobState.FAILED:
        job.error_code = error_code or job.error_code or "failed"
        job.error_message = message or job.error_message
    if state == JobState.QUEUED:
        _reset_for_retry(job)
    if state == JobState.ADMITTED and job.started_at is None:
        job.started_at = now
    add_event(
        session,
        job,
        "state",
        message or f"{previous} -> {state.value}",
        step=state.value,
        data={"from": previous, "to": state.value, **(data or {})},
    )


RETRY_FORGETS: tuple[str, ...] = (
    "messages",
    "draft_hash",
    "draft",
    "render_id",
    "backend_render_id",
    "url_refreshes",
    "token_refused_since",
    "render_started_at",
    "render_failures",
    "renders_lost",
    "render_progress",
    "output_url",
)
"""Checkpoint keys a retry forgets: the agent is asked again and the video rendered again. The
session and the uploads are kept (free to reuse; a lost session is replaced when met)."""


def forget_for_retry(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in checkpoint.items() if key not in RETRY_FORGETS}


def _reset_for_retry(job: Job) -> None:
    """A retried job asks the agent again; the session and uploads are reused."""
    job.checkpoint = forget_for_retry(job.checkpoint)
    job.error_code = None
    job.error_message = None
    job.bind_url = None
    job.finished_at = None
    job.next_attempt_at = None
    job.resume_state = None
