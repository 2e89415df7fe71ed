"""Jobs: show, events, cancel, retry, and the video and poster downloads."""

import logging
import mimetypes
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api.deps import IdPath, SessionDep, SettingsDep, StorageDep, TenantDep, parse_id
from api.errors import ApiError, Conflict, NotFound
from api.object_responses import stream_object
from api.openapi import errors, file_responses
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from api.schemas.jobs import EventOut, EventPage, JobOut, job_summary, output_out, public_input
from core import broker
from core.models import Job, Tenant
from core.repo import reads, transitions
from core.settings import Settings
from core.states import FINAL, JobState
from core.storage import InvalidKey, LocalStorage, Storage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def _job(session: Session, tenant: Tenant, job_id: str, *, lock: bool = False) -> Job:
    key = parse_id(job_id, "job")
    get = reads.get_job_for_update if lock else reads.get_job
    job = get(session, tenant.id, key)
    if job is None:
        raise NotFound("job")
    return job


def _job_out(request: Request, session: Session, job: Job) -> JobOut:
    summary = job_summary(job)
    return JobOut(
        **summary.model_dump(),
        priority=job.priority,
        input=public_input(job.input),
        bind_url=job.bind_url,
        output=output_out(
            job.output,
            str(request.url_for("job_video", job_id=str(job.id))),
            str(request.url_for("job_poster", job_id=str(job.id))),
        ),
        timeline_summary=job.timeline_summary,
        started_at=job.started_at,
        events=[EventOut.model_validate(event) for event in reads.recent_events(session, job.id)],
    )


@router.get(
    "/{job_id}",
    response_model=JobOut,
    responses=errors(401, 404),
    summary="A job with its latest events",
)
def get_job(job_id: IdPath, request: Request, tenant: TenantDep, session: SessionDep) -> JobOut:
    return _job_out(request, session, _job(session, tenant, job_id))


@router.get(
    "/{job_id}/events",
    response_model=EventPage,
    responses=errors(401, 404, 422),
    summary="All of a job's events",
)
def list_events(
    job_id: IdPath,
    tenant: TenantDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> EventPage:
    job = _job(session, tenant, job_id)
    after = decode_cursor(cursor, ("e",))["e"] if cursor else None
    if after is not None and not isinstance(after, int):
        decode_cursor("", ("e",))
    events = reads.list_events(session, job.id, limit=limit + 1, after_id=after)
    page = events[:limit]
    return EventPage(
        items=[EventOut.model_validate(event) for event in page],
        next_cursor=encode_cursor({"e": page[-1].id}) if len(events) > limit else None,
    )


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses=errors(401, 404, 409),
    summary="Cancel a job",
)
def cancel_job(
    job_id: IdPath, request: Request, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> JobOut:
    """The job stops at its current step; a render in flight is canceled on the backend by a
    worker."""
    job = _job(session, tenant, job_id, lock=True)
    if job.state in FINAL:
        raise Conflict(f"the job has already finished ({job.state}); nothing to cancel")
    # A `batch.completed` this makes is sent by the worker's webhook claimer.
    canceled = transitions.cancel_job(session, job, "canceled through the API")
    session.commit()
    if canceled.rendering:
        broker.send_cancel_renders(canceled.rendering, settings.redis_url)
    return _job_out(request, session, job)


@router.post(
    "/{job_id}/retry",
    response_model=JobOut,
    responses=errors(401, 404, 409),
    summary="Retry a failed or canceled job",
)
def retry_job(
    job_id: IdPath, request: Request, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> JobOut:
    job = _job(session, tenant, job_id, lock=True)
    if job.state not in (JobState.FAILED, JobState.CANCELED):
        raise Conflict(
            f"only failed or canceled jobs can be retried; this one is {job.state}",
        )
    transitions.retry_job(session, job, "retried through the API")
    session.commit()
    broker.send_dispatch(
        "job_retried", settings.redis_url, job_id=str(job.id), tenant_id=str(tenant.id)
    )
    return _job_out(request, session, job)


def retention_gone(output: dict[str, Any] | None, what: str) -> ApiError | None:
    """410 for an output the retention policy deleted, saying when and after how long."""
    deleted = (output or {}).get("deleted_at")
    if not deleted:
        return None
    when = str(deleted)[:16].replace("T", " ")
    days = (output or {}).get("retention_days")
    after = f" after {float(days):g} days" if isinstance(days, int | float) else ""
    return ApiError(
        410,
        "gone",
        f"the {what} was deleted on {when} UTC{after} by the retention policy (RETENTION_DAYS); "
        "submit the product again in a new batch to render it anew",
    )


def _serve(
    request: Request,
    job: Job,
    storage: Storage,
    settings: Settings,
    key: str,
    what: str,
    default_type: str,
    redirect: bool,
) -> Response:
    if gone := retention_gone(job.output, what):
        raise gone
    stored = (job.output or {}).get(key)
    if not stored:
        raise ApiError(404, "not_ready", f"the {what} is not ready (the job is {job.state})")
    try:
        object_key = storage.key_of(str(stored))
    except InvalidKey:
        log.error("job %s has an output outside the store; refusing to serve it", job.id)
        raise ApiError(404, "not_found", f"the {what} is not available") from None
    suffix = PurePosixPath(object_key).suffix
    media_type = mimetypes.guess_type(object_key)[0] or default_type
    name = f"{job.ref or job.id}{suffix}"
    if isinstance(storage, LocalStorage):
        path = storage.path_for(object_key)
        if not path.is_file():
            raise ApiError(404, "not_found", f"the {what} file is missing from storage")
        return FileResponse(
            path, media_type=media_type, filename=name, content_disposition_type="inline"
        )
    if not storage.exists(object_key):
        raise ApiError(404, "not_found", f"the {what} file is missing from storage")
    if redirect:
        url = storage.presigned_url(object_key, settings.storage_redirect_ttl_s)
        if url:
            return RedirectResponse(url, status_code=307, headers={"Cache-Control": "no-store"})
    return stream_object(request, storage, object_key, media_type, name)


_REDIRECT_DOC = (
    "With object storage, answer 307 with a short-lived presigned URL of the file instead of "
    "the bytes (STORAGE_REDIRECT_TTL_S); with local storage the file is served as usual."
)
RedirectQuery = Annotated[bool, Query(description=_REDIRECT_DOC)]


@router.get(
    "/{job_id}/video",
    name="job_video",
    response_class=FileResponse,
    responses=file_responses("video/mp4") | errors(401, 404, 410, 422),
    summary="The MP4 (supports Range; ?redirect=1 for a presigned URL)",
)
def get_video(
    job_id: IdPath,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    redirect: RedirectQuery = False,
) -> Response:
    job = _job(session, tenant, job_id)
    return _serve(request, job, storage, settings, "path", "video", "video/mp4", redirect)


@router.get(
    "/{job_id}/poster",
    name="job_poster",
    response_class=FileResponse,
    responses=file_responses("image/jpeg") | errors(401, 404, 410, 422),
    summary="The poster frame (supports Range; ?redirect=1 for a presigned URL)",
)
def get_poster(
    job_id: IdPath,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    storage: StorageDep,
    settings: SettingsDep,
    redirect: RedirectQuery = False,
) -> Response:
    job = _job(session, tenant, job_id)
    return _serve(request, job, storage, settings, "poster_path", "poster", "image/jpeg", redirect)
