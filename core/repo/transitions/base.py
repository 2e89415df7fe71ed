"""Shared by every writer of a job's state: the tables, the fencing error, and the one builder of
event rows."""

import uuid
from typing import Any, cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from core.models import Job, JobEvent, Tenant
from core.states import FINAL, JobState

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


def add_event(
    session: Session, job: Job, kind: str, message: str | None = None, **fields: Any
) -> None:
    """An event about a loaded job, at its current step and attempt unless told."""
    step = fields.pop("step", None) or job.state
    session.add(JobEvent(**event_row(job.id, step, kind, job.step_attempts, message, **fields)))
