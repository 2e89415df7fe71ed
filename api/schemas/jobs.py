"""Job, event and credit answers. Nothing here exposes a storage path or a secret."""

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.media import MEDIA_LISTS
from core.states import JobState


class EventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    step: str
    kind: str
    attempt: int
    message: str | None
    http_status: int | None
    backend_code: int | None
    latency_ms: int | None
    data: dict[str, Any] | None


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


class JobSummary(BaseModel):
    id: uuid.UUID
    batch_id: uuid.UUID
    item_index: int
    ref: str | None
    state: JobState
    step: JobState | None = Field(description="The pipeline step the job is in or returns to.")
    attempts: int
    error_code: str | None
    error_message: str | None
    throttled: bool = Field(
        default=False, description="The job is waiting because the backend answers HTTP 429."
    )
    throttled_since: datetime | None = Field(
        default=None,
        description="Since when; past NEMO_THROTTLE_MAX_S the job fails `rate_limited`.",
    )
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class JobPage(BaseModel):
    items: list[JobSummary]
    next_cursor: str | None


class OutputOut(BaseModel):
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    codec: str | None = None
    size: int | None = None
    sha256: str | None = None
    video_url: str
    poster_url: str | None = None
    deleted_at: datetime | None = Field(
        default=None,
        description="When the retention policy deleted the video and poster (their URLs then "
        "answer 410 Gone); null while they are kept.",
    )


class JobOut(JobSummary):
    priority: int
    input: dict[str, Any]
    bind_url: str | None = Field(description="Where to register when credits ran out.")
    output: OutputOut | None
    timeline_summary: str | None
    started_at: datetime | None
    events: list[EventOut] = Field(description="The 20 most recent events, oldest first.")


class CreditsOut(BaseModel):
    account: Literal["shared", "tenant"] = Field(
        description="`shared`, or `tenant` when the tenant has its own token."
    )
    available: int | None
    frozen: int | None
    total: int | None
    seen_at: datetime | None
    message: str | None = None


def job_step(job: Any) -> str | None:
    from core.states import RUNNING, WAITING

    if job.state in RUNNING:
        return str(job.state)
    if job.state in WAITING:
        return job.resume_state
    return None


def job_summary(job: Any) -> JobSummary:
    return JobSummary(
        id=job.id,
        batch_id=job.batch_id,
        item_index=job.item_index,
        ref=job.ref,
        state=job.state,
        step=job_step(job),
        attempts=job.attempts,
        error_code=job.error_code,
        error_message=job.error_message,
        throttled=job.throttled_since is not None,
        throttled_since=job.throttled_since,
        created_at=job.created_at,
        updated_at=job.updated_at,
        finished_at=job.finished_at,
    )


def public_input(job_input: dict[str, Any]) -> dict[str, Any]:
    """The job's input without storage paths of its assets."""

    def strip(ref: Any) -> Any:
        return {k: v for k, v in ref.items() if k != "path"} if isinstance(ref, dict) else ref

    shown = dict(job_input)
    for field in MEDIA_LISTS:
        if isinstance(shown.get(field), list):
            shown[field] = [strip(ref) for ref in shown[field]]
    shown["music"] = strip(shown.get("music"))
    return shown


def output_out(output: dict[str, Any] | None, video_url: str, poster_url: str) -> OutputOut | None:
    """The output's public facts and download URLs; `path` and `poster_path` stay inside."""
    if not output or not (output.get("path") or output.get("deleted_at")):
        return None
    facts = {key: output.get(key) for key in ("duration", "width", "height", "codec", "size")}
    if facts["duration"] is None:  # the worker records the probe's `duration_s`
        facts["duration"] = output.get("duration_s")
    return OutputOut(
        **facts,
        sha256=output.get("sha256"),
        video_url=video_url,
        poster_url=poster_url if output.get("poster_path") else None,
        deleted_at=output.get("deleted_at"),
    )
