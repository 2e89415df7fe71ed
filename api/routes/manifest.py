"""A batch's results: the manifest (CSV or JSON), a zip of every finished video, and a page of
products for the web page's grid.

Both read the jobs page by page (`core.repo.manifest`) and stream, so a 10,000-job batch or a
zip of gigabytes costs the API a page of rows and one zip chunk of memory at a time.
"""

import csv
import io
import logging
import re
import uuid
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session
from zipstream import ZIP_STORED, ZipStream

from api.advice import STATE_WORDS, advice_for
from api.deps import IdPath, SessionDep, StorageDep, TenantDep, parse_id
from api.errors import Conflict, NotFound
from api.openapi import Responses, errors
from api.outputs import output_key
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor
from api.schemas.manifest import MANIFEST_COLUMNS, ManifestOut, ManifestRow
from api.schemas.products import ProductOut, ProductPage
from core.db import new_session
from core.models import Batch, Tenant
from core.repo import batches as repo
from core.repo.manifest import ManifestJob, manifest_jobs, product_page
from core.states import BatchStatus, JobState
from core.storage import ObjectMissing, Storage

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/batches", tags=["batches"])

_CSV_ANSWER: Responses = {
    200: {
        "description": "A header row, then one row per job in item order.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
_ZIP_ANSWER: Responses = {
    200: {
        "description": "A zip of every finished video, each named by its ref (`mug-1.mp4`).",
        "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
    }
}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _batch(session: Session, tenant: Tenant, batch_id: str) -> Batch:
    batch = repo.get_batch(session, tenant.id, parse_id(batch_id, "batch"))
    if batch is None:
        raise NotFound("batch")
    return batch


class _Urls:
    """A job's download URLs, built once from the routes (not per row: 10,000 rows)."""

    def __init__(self, request: Request) -> None:
        marker = "00000000-0000-0000-0000-000000000000"
        self.video = str(request.url_for("job_video", job_id=marker)).replace(marker, "{}")
        self.poster = str(request.url_for("job_poster", job_id=marker)).replace(marker, "{}")

    def row(self, job: ManifestJob) -> ManifestRow:
        output = job.output if job.output and job.output.get("path") else None
        facts: dict[str, Any] = output or {}
        duration = facts.get("duration_s", facts.get("duration"))
        return ManifestRow(
            item_index=job.item_index,
            ref=job.ref,
            title=job.title,
            state=JobState(job.state),
            error_code=job.error_code,
            error_message=job.error_message,
            video_url=self.video.format(job.id) if output else None,
            poster_url=self.poster.format(job.id) if facts.get("poster_path") else None,
            duration_s=round(float(duration), 3) if duration is not None else None,
            size=facts.get("size"),
            sha256=facts.get("sha256"),
        )

    def product(self, job: ManifestJob) -> ProductOut:
        row = self.row(job)
        return ProductOut(
            job_id=job.id,
            **row.model_dump(exclude={"size", "sha256"}),
            state_text=STATE_WORDS[row.state],
            advice=advice_for(row.state, job.error_code),
        )


def _filename(batch: Batch, suffix: str) -> str:
    stem = _UNSAFE.sub("-", batch.name).strip("-.") or f"batch-{batch.id}"
    return f"{stem[:100]}{suffix}"


@router.get(
    "/{batch_id}/products",
    response_model=ProductPage,
    responses=errors(401, 404, 422),
    summary="A page of the batch's products with their results",
)
def list_products(
    batch_id: IdPath,
    request: Request,
    tenant: TenantDep,
    session: SessionDep,
    state: Annotated[JobState | None, Query(description="Only products in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> ProductPage:
    """In item order, as the web page's grid shows them: the state in words, what to do about
    a failure, the video's and poster's URLs and duration."""
    batch = _batch(session, tenant, batch_id)
    after = decode_cursor(cursor, ("i",))["i"] if cursor else None
    if after is not None and not isinstance(after, int):
        decode_cursor("", ("i",))
    jobs = product_page(
        session, tenant.id, batch.id, state=state, after_index=after, limit=limit + 1
    )
    page, urls = jobs[:limit], _Urls(request)
    more = len(jobs) > limit and page
    return ProductPage(
        items=[urls.product(job) for job in page],
        next_cursor=encode_cursor({"i": page[-1].item_index}) if more else None,
    )


@router.get(
    "/{batch_id}/manifest.json",
    response_model=ManifestOut,
    responses=errors(401, 404),
    summary="The batch's manifest as JSON",
)
def manifest_json(
    batch_id: IdPath, request: Request, tenant: TenantDep, session: SessionDep
) -> ManifestOut:
    """Every job: ref, title, state, error, video and poster URLs, duration, size, sha256."""
    batch = _batch(session, tenant, batch_id)
    urls = _Urls(request)
    rows = [urls.row(job) for job in manifest_jobs(session, tenant.id, batch.id)]
    return ManifestOut(
        batch_id=batch.id, name=batch.name, status=BatchStatus(batch.status), items=rows
    )


def _rows_in_own_session(
    urls: _Urls, tenant_id: uuid.UUID, batch_id: uuid.UUID
) -> Iterator[ManifestRow]:
    """The rows, read while the answer streams: in a session of its own, since the request's
    may be closed once the route has returned."""
    session = new_session()
    try:
        for job in manifest_jobs(session, tenant_id, batch_id):
            yield urls.row(job)
    finally:
        session.close()


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text: a value from an item (a title like "=HYPERLINK(...)")
    that would start a formula gets a leading `'` (OWASP's advice for CSV injection)."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_lines(rows: Iterator[ManifestRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(MANIFEST_COLUMNS)
    for count, row in enumerate(rows, 1):
        fields = row.model_dump()
        writer.writerow([_cell(fields[name]) for name in MANIFEST_COLUMNS])
        if count % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


@router.get(
    "/{batch_id}/manifest.csv",
    response_class=StreamingResponse,
    responses=_CSV_ANSWER | errors(401, 404),
    summary="The batch's manifest as CSV",
)
def manifest_csv(
    batch_id: IdPath, request: Request, tenant: TenantDep, session: SessionDep
) -> StreamingResponse:
    """Columns: `item_index,ref,title,state,error_code,error_message,video_url,poster_url,
    duration_s,size,sha256`; empty cells for what a job does not have."""
    batch = _batch(session, tenant, batch_id)
    return StreamingResponse(
        _csv_lines(_rows_in_own_session(_Urls(request), tenant.id, batch.id)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{_filename(batch, ".csv")}"'},
    )


def _zip_name(job: ManifestJob, taken: set[str]) -> str:
    """`<ref>.mp4`, made safe for every unzip tool; a second product of the same name gets
    `-2` (and so on), one without a ref `item-<index>`."""
    stem = _UNSAFE.sub("_", job.ref or "").strip("._")[:150] or f"item-{job.item_index}"
    name, count = f"{stem}.mp4", 1
    while name.lower() in taken:
        count += 1
        name = f"{stem}-{count}.mp4"
    taken.add(name.lower())
    return name


def videos_zip_stream(session: Session, storage: Storage, batch: Batch) -> tuple[ZipStream, int]:
    """A stored (not deflated: MP4 does not shrink) zip of the batch's finished videos; its size
    is known before the first byte, and each file is read only as the zip is sent. Returns the
    zip and how many videos it holds."""
    archive = ZipStream(compress_type=ZIP_STORED, sized=True)
    taken: set[str] = set()
    for job in manifest_jobs(session, batch.tenant_id, batch.id, succeeded_only=True):
        key = output_key(storage, job.output, "path")
        size = (job.output or {}).get("size")
        if key is None:
            if not (job.output or {}).get("deleted_at"):  # not the retention policy's doing
                log.warning("job %s succeeded but has no video in storage", job.id)
            continue
        if not isinstance(size, int):  # an older job: ask the store once
            try:
                part = storage.open(key)
            except ObjectMissing:
                log.warning("job %s succeeded but its video is missing from storage", job.id)
                continue
            part.body.close()
            size = part.size
        archive.add(_read_when_sent(storage, key), _zip_name(job, taken), size=size)
    return archive, len(taken)


def _read_when_sent(storage: Storage, key: str) -> Iterator[bytes]:
    """The object's bytes, opened only when the zip reaches it (one open object at a time)."""
    yield from storage.open(key).chunks()


@router.get(
    "/{batch_id}/videos.zip",
    response_class=StreamingResponse,
    responses=_ZIP_ANSWER | errors(401, 404, 409),
    summary="Every finished video of the batch in one zip",
)
def videos_zip(
    batch_id: IdPath, tenant: TenantDep, session: SessionDep, storage: StorageDep
) -> StreamingResponse:
    """Streamed as it is built, with a Content-Length. No Range: to resume a very large
    download, fetch the videos one by one from the manifest (README, "Downloads")."""
    batch = _batch(session, tenant, batch_id)
    archive, videos = videos_zip_stream(session, storage, batch)
    if not videos:
        raise Conflict("no video of this batch is finished yet; download it once one is")
    return StreamingResponse(
        iter(archive),
        media_type="application/zip",
        headers={
            "Content-Length": str(len(archive)),
            "Content-Disposition": f'attachment; filename="{_filename(batch, ".zip")}"',
        },
    )
