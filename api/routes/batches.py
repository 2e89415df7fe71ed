"""Batches: create (JSON or CSV, idempotent), list, show, list jobs, cancel, retry, resume."""

import logging
from functools import partial
from typing import IO, Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from python_multipart.multipart import parse_options_header
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.bodies import parse_streamed
from api.deps import IdPath, SessionDep, SettingsDep, TenantDep, parse_id
from api.errors import ApiError, Conflict, NotFound
from api.openapi import answer, errors, links, ref, request_body
from api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    decode_cursor,
    decode_time_cursor,
    encode_cursor,
    encode_time_cursor,
)
from api.schemas.batches import BatchActionOut, BatchOut, BatchPage, batch_out
from api.schemas.jobs import JobPage, job_summary
from core import broker
from core.batch_input import BatchIn, Options
from core.csv_import import QUERY_FIELDS, read_csv
from core.errors import loc_path
from core.input_refs import input_urls
from core.intake import Locate, build_batch, request_hash_prefix, validate_body
from core.json_stream import read_batch_json
from core.models import Batch, Tenant
from core.repo import batches as repo
from core.repo import transitions
from core.repo.reads import list_jobs
from core.settings import Settings
from core.states import JobState

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/batches", tags=["batches"])

JSON_TYPES = ("application/json",)
CSV_TYPES = ("text/csv", "application/csv")
CSV_DOC = (
    "Columns `ref,title,description,images,prompt`, optionally `clips,music,aspect_ratio,"
    "duration_s,language`; images separated by `|`. The batch's fields are query parameters."
)


def _csv_query(name: str) -> dict[str, Any]:
    """A query parameter of a CSV batch: the JSON batch's field of that name (never null)."""
    model = Options if name in Options.model_fields else BatchIn
    schema = dict(model.model_json_schema()["properties"][name])
    schema.pop("default", None)
    cases = [case for case in schema.pop("anyOf", []) if case.get("type") != "null"]
    if len(cases) == 1:
        schema |= cases[0]
    elif cases:
        schema["anyOf"] = cases
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": "With a CSV body only: the batch's field of this name.",
        "schema": schema,
    }


BATCH_OPERATIONS = (
    "get_batch",
    "list_batch_jobs",
    "cancel_batch",
    "retry_failed",
    "resume_batch",
    "list_deliveries",
)
JOB_OPERATIONS = ("get_job", "list_events", "cancel_job", "retry_job", "job_video", "job_poster")

_BODY_DOC = request_body(
    {
        "application/json": {"schema": ref(BatchIn)},
        "text/csv": {
            "schema": {"type": "string", "format": "binary", "description": CSV_DOC},
            "example": "ref,title,description,images,prompt\nsku-1,Mug,A blue mug,"
            "https://example.com/a.jpg|https://example.com/b.jpg,\n",
        },
    }
) | {"parameters": [_csv_query(name) for name in QUERY_FIELDS]}


def _counts(session: Session, batch: Batch) -> dict[str, int]:
    return repo.state_counts(session, [batch.id])[batch.id]


def _store_batch(
    session: Session,
    tenant: Tenant,
    settings: Settings,
    spec: BatchIn,
    locate: Locate,
    digest: str,
    idempotency_key: str | None,
) -> tuple[Batch, bool, bool]:
    """Store a parsed batch; (batch, created, whether a job has URL media). A replayed key
    returns the first batch."""

    def replay() -> Batch | None:
        if idempotency_key is None:
            return None
        existing = repo.find_by_idempotency_key(session, tenant.id, idempotency_key)
        if existing is not None and existing.request_hash != digest:
            raise Conflict(
                "this Idempotency-Key was already used with a different request; "
                "use a new key for a new batch",
                code="idempotency_conflict",
            )
        return existing

    if (existing := replay()) is not None:
        return existing, False, False
    batch, rows = build_batch(
        session,
        tenant,
        settings,
        spec,
        locate,
        idempotency_key=idempotency_key,
        request_digest=digest,
    )
    try:
        repo.insert_batch(session, batch, rows)
        session.commit()
    except IntegrityError:
        session.rollback()
        if (existing := replay()) is not None:
            return existing, False, False
        raise
    return batch, True, any(input_urls(row["input"]) for row in rows)


@router.post(
    "",
    status_code=201,
    response_model=BatchOut,
    openapi_extra=_BODY_DOC,
    responses=answer(200, BatchOut, "The Idempotency-Key was replayed.")
    | links(201, "batch_id", "$response.body#/id", *BATCH_OPERATIONS)
    | errors(400, 401, 409, 413, 415, 422),
    summary="Create a batch from JSON or CSV",
)
async def create_batch(
    request: Request,
    response: Response,
    tenant: TenantDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> BatchOut:
    """201 with the new batch; 200 with the first batch when an Idempotency-Key is replayed."""
    content_type = parse_options_header(request.headers.get("content-type"))[0].decode()
    if content_type in JSON_TYPES or content_type.endswith("+json"):
        kind = "json"
    elif content_type in CSV_TYPES:
        kind = "csv"
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            "send the batch as application/json or text/csv "
            f"(got {content_type or 'no Content-Type'})",
        )
    query = list(request.query_params.multi_items()) if kind == "csv" else []

    def parse(stream: IO[bytes]) -> tuple[BatchIn, Locate]:
        """Run as the body arrives; stops it at the first excess (core/json_stream.py)."""
        if kind == "csv":
            parsed = read_csv(stream, dict(query).get, max_rows=settings.max_batch_items)
            return validate_body(parsed.body, parsed.locate, settings), parsed.locate
        return read_batch_json(stream, settings), loc_path

    prefix = request_hash_prefix(kind, query)
    (spec, locate), body = await parse_streamed(request, settings.max_request_bytes, prefix, parse)
    batch, created, has_urls = await run_in_threadpool(
        _store_batch, session, tenant, settings, spec, locate, body.sha256, idempotency_key
    )
    if not created:
        response.status_code = 200
        return batch_out(batch, await run_in_threadpool(_counts, session, batch))
    if has_urls:  # kept in storage now, however long the batch waits for its turn
        await run_in_threadpool(broker.send_fetch_inputs, batch.id, settings.redis_url)
    await run_in_threadpool(
        partial(
            broker.send_dispatch,
            "batch_created",
            settings.redis_url,
            batch_id=str(batch.id),
            tenant_id=str(tenant.id),
        )
    )
    counts = {state.value: 0 for state in JobState}
    counts[JobState.QUEUED] = batch.item_count
    return batch_out(batch, counts)


@router.get(
    "",
    response_model=BatchPage,
    responses=errors(401, 422),
    summary="List batches, newest first",
)
def list_batches(
    tenant: TenantDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> BatchPage:
    before = decode_time_cursor(cursor)
    rows = repo.list_batches(session, tenant.id, limit=limit + 1, before=before)
    page, more = rows[:limit], len(rows) > limit
    counts = repo.state_counts(session, [batch.id for batch in page])
    last = page[-1] if page else None
    next_cursor = encode_time_cursor(last) if more and last else None
    return BatchPage(
        items=[batch_out(batch, counts[batch.id]) for batch in page], next_cursor=next_cursor
    )


def _batch(session: Session, tenant: Tenant, batch_id: str, *, lock: bool = False) -> Batch:
    key = parse_id(batch_id, "batch")
    get = repo.get_batch_for_update if lock else repo.get_batch
    batch = get(session, tenant.id, key)
    if batch is None:
        raise NotFound("batch")
    return batch


@router.get(
    "/{batch_id}",
    response_model=BatchOut,
    responses=errors(401, 404),
    summary="A batch with counts by state",
)
def get_batch(batch_id: IdPath, tenant: TenantDep, session: SessionDep) -> BatchOut:
    batch = _batch(session, tenant, batch_id)
    return batch_out(batch, _counts(session, batch))


@router.get(
    "/{batch_id}/jobs",
    response_model=JobPage,
    responses=links(200, "job_id", "$response.body#/items/0/id", *JOB_OPERATIONS)
    | errors(401, 404, 422),
    summary="A batch's jobs in item order",
)
def list_batch_jobs(
    batch_id: IdPath,
    tenant: TenantDep,
    session: SessionDep,
    state: Annotated[JobState | None, Query(description="Only jobs in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JobPage:
    batch = _batch(session, tenant, batch_id)
    after = None
    if cursor:
        after = decode_cursor(cursor, ("i",))["i"]
        if not isinstance(after, int):
            decode_cursor("", ("i",))
    jobs = list_jobs(session, tenant.id, batch.id, state=state, limit=limit + 1, after_index=after)
    page = jobs[:limit]
    more = len(jobs) > limit
    return JobPage(
        items=[job_summary(job) for job in page],
        next_cursor=encode_cursor({"i": page[-1].item_index}) if more and page else None,
    )


@router.post(
    "/{batch_id}/cancel",
    response_model=BatchActionOut,
    responses=errors(401, 404, 409),
    summary="Cancel a batch",
)
def cancel_batch(
    batch_id: IdPath, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> BatchActionOut:
    """Every job not yet final is canceled, and the batch with them; renders in flight are
    canceled on the backend by a worker."""
    batch = _batch(session, tenant, batch_id)  # not locked: jobs are locked before their batch
    if batch.status in repo.FINAL_BATCH:
        raise Conflict(f"the batch has already finished ({batch.status}); nothing to cancel")
    # A `batch.completed` this makes is sent by the worker's webhook claimer.
    canceled = transitions.cancel_batch(session, batch.id, "batch canceled")
    if canceled is None:
        session.rollback()
        raise Conflict("the batch finished meanwhile; nothing to cancel")
    session.commit()
    broker.send_cancel_renders(canceled.rendering, settings.redis_url)
    return BatchActionOut(batch=batch_out(batch, _counts(session, batch)), changed=canceled.count)


@router.post(
    "/{batch_id}/retry-failed",
    response_model=BatchActionOut,
    responses=errors(401, 404, 409),
    summary="Retry failed jobs",
)
def retry_failed(
    batch_id: IdPath, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> BatchActionOut:
    """Failed jobs go back to the queue (finished steps are not paid for again)."""
    batch = _batch(session, tenant, batch_id)  # not locked: jobs are locked before their batch
    changed = transitions.retry_failed(session, batch.id, "retried with the batch's failed jobs")
    if not changed:
        raise Conflict("the batch has no failed jobs to retry")
    session.commit()
    sent = broker.send_dispatch(
        "batch_retry_failed", settings.redis_url, batch_id=str(batch.id), tenant_id=str(tenant.id)
    )
    return BatchActionOut(
        batch=batch_out(batch, _counts(session, batch)), changed=changed, dispatched=sent
    )


@router.post(
    "/{batch_id}/resume",
    response_model=BatchActionOut,
    responses=errors(401, 404, 409),
    summary="Resume after credits",
)
def resume_batch(
    batch_id: IdPath, tenant: TenantDep, session: SessionDep, settings: SettingsDep
) -> BatchActionOut:
    """For a batch paused for credits: lift the tenant's pause and dispatch again."""
    batch = _batch(session, tenant, batch_id)  # not locked: jobs are locked before their batch
    paused = batch.status == "paused" or tenant.paused_at is not None
    if not paused and not repo.has_waiting_credits(session, batch.id):
        raise Conflict(f"the batch is not paused (status {batch.status}); nothing to resume")
    changed = transitions.resume_batch(session, batch, tenant)
    session.commit()
    sent = broker.send_dispatch(
        "batch_resumed", settings.redis_url, batch_id=str(batch.id), tenant_id=str(tenant.id)
    )
    return BatchActionOut(
        batch=batch_out(batch, _counts(session, batch)), changed=changed, dispatched=sent
    )
