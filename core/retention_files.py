"""RETENTION_DAYS for files: the videos and posters of jobs final for longer, asset rows no job
within it (nor a schedule) uses, and then every stored object no row still names.

Three passes (`core.retention` runs them):

1. outputs: a job final before the cutoff keeps its facts but loses `path` and `poster_path`;
   its output gets `deleted_at`, so its routes answer 410 with words, and the manifest and
   zip skip it. Its charge comes off the tenant's usage in the same transaction.
2. assets: an asset row created before the cutoff goes when no job of its tenant that is not
   past retention (not final, or final after the cutoff) and no schedule of its tenant names
   it; its size comes off the tenant's usage in the same transaction.
3. objects: committed first, then each area of the store is listed, and an object goes only
   when no row names it any more (an asset row of any tenant, a job's output, a job within
   retention's input or fetched copy) and it was not written recently (`_spared_after`).

Content-addressed objects are shared by jobs and tenants: an object goes in pass 3 only, when
the last row naming it is gone, whichever tenant's. A crash between the passes leaves objects
no row names; the next run sweeps them. An upload of bytes already stored marks the object as
written now (`Storage._place`), so the sweep does not take it from under the row being made.
"""

import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, literal_column, or_, select
from sqlalchemy.orm import Session

from core.models import Asset, Job, Schedule
from core.repo.storage_usage import CHARGED, job_charge, release
from core.states import FINAL
from core.storage import AREAS, InvalidKey, Storage

FINAL_VALUES = sorted(state.value for state in FINAL)
PAGE = 500
RECENT = timedelta(hours=2)
"""Objects written this recently are never swept, whatever RETENTION_DAYS says: a row that
will name one may be on its way (a fetch checkpointed after its file, an upload's row)."""


@dataclass
class FileReport:
    outputs: int = 0
    """Jobs whose video and poster were deleted."""
    assets: int = 0
    """Asset rows deleted."""
    objects: int = 0
    bytes: int = 0
    """Files deleted from the store, and their bytes."""
    released: int = 0
    """Bytes counted off tenants' storage usage."""

    def words(self, verb: str) -> str:
        return (
            f"{verb} the videos of {self.outputs} jobs and {self.assets} unused assets; "
            f"{self.objects} files ({self.bytes:,} bytes) no longer used by any row; "
            f"{self.released:,} bytes counted off tenants' storage usage"
        )


def _live(cutoff: datetime) -> Any:
    """Jobs within retention: not final, or final since the cutoff."""
    return or_(Job.state.not_in(FINAL_VALUES), Job.finished_at.is_(None), Job.finished_at >= cutoff)


def end_of_page(session: Session, dry_run: bool) -> Callable[[], None]:
    """After each page: commit (tenants' rows are not held locked for the whole pass), or for
    a dry run only flush, so that the caller rolls everything back."""
    return session.flush if dry_run else session.commit


def expire_outputs(
    session: Session,
    cutoff: datetime,
    now: datetime,
    days: float,
    report: FileReport,
    end_page: Callable[[], None],
) -> None:
    """Pass 1."""
    while True:
        jobs = session.scalars(
            select(Job)
            .where(
                Job.state.in_(FINAL_VALUES),
                Job.finished_at < cutoff,
                Job.output.is_not(None),
                Job.output.has_key("path"),
            )
            .order_by(Job.finished_at)
            .limit(PAGE)
            .with_for_update(skip_locked=True)
        ).all()
        for job in jobs:
            charged = job_charge(job.output, job.checkpoint)
            kept = {k: v for k, v in (job.output or {}).items() if k not in ("path", "poster_path")}
            job.output = {**kept, "deleted_at": now.isoformat(), "retention_days": days}
            job.checkpoint = {**job.checkpoint, CHARGED: 0}
            release(session, job.tenant_id, charged)
            report.outputs += 1
            report.released += charged
        end_page()
        if len(jobs) < PAGE:
            return


def expire_assets(
    session: Session, cutoff: datetime, report: FileReport, end_page: Callable[[], None]
) -> None:
    """Pass 2."""
    used = _assets_in_use(session, cutoff)
    after: uuid.UUID | None = None
    while True:
        query = select(Asset.id, Asset.tenant_id, Asset.size).where(Asset.created_at < cutoff)
        if after is not None:
            query = query.where(Asset.id > after)
        rows = session.execute(query.order_by(Asset.id).limit(PAGE)).all()
        unused = [
            (id_, tenant, size) for id_, tenant, size in rows if (tenant, str(id_)) not in used
        ]
        if unused:
            gone = session.execute(
                delete(Asset)
                .where(Asset.id.in_([id_ for id_, _, _ in unused]), Asset.created_at < cutoff)
                .returning(Asset.tenant_id, Asset.size)
            ).all()
            for tenant, size in gone:
                release(session, tenant, size)
                report.assets += 1
                report.released += size
        end_page()
        if len(rows) < PAGE:
            return
        after = rows[-1][0]


def _assets_in_use(session: Session, cutoff: datetime) -> set[tuple[uuid.UUID, str]]:
    """(tenant, asset id) named by a job within retention or by any schedule's items."""
    used = {
        (tenant, str(found))
        for tenant, found in session.execute(
            select(Job.tenant_id, _texts_at(Job.input, "$.**.asset_id")).where(_live(cutoff))
        )
    }
    for tenant, items in session.execute(select(Schedule.tenant_id, Schedule.items)):
        used.update((tenant, found) for text in _strings(items) if (found := _uuid_text(text)))
    return used


def _texts_at(column: Any, path: str) -> Any:
    """Each value at a JSON path of the column, as text (one row per value)."""
    found = func.jsonb_path_query(column, literal_column(f"'{path}'::jsonpath"))
    return found.op("#>>")(literal_column("'{}'::text[]"))


def _uuid_text(text: str) -> str | None:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for inner in value.values():
            yield from _strings(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _strings(inner)


def keys_in_use(session: Session, storage: Storage, cutoff: datetime) -> set[str]:
    """Every object key a row names: asset rows, stored outputs, and the inputs and fetched
    copies of jobs within retention."""
    named: Iterable[Any] = (
        *session.scalars(select(Asset.path)),
        *session.scalars(select(Job.output["path"].astext).where(Job.output.has_key("path"))),
        *session.scalars(
            select(Job.output["poster_path"].astext).where(Job.output.has_key("poster_path"))
        ),
        *session.scalars(select(_texts_at(Job.input, "$.**.path")).where(_live(cutoff))),
        *session.scalars(select(_texts_at(Job.checkpoint, "$.fetched.*.key")).where(_live(cutoff))),
    )
    keys = set()
    for stored in named:
        try:
            keys.add(storage.key_of(str(stored)))
        except InvalidKey:
            continue
    return keys


def sweep_objects(
    session: Session,
    storage: Storage,
    cutoff: datetime,
    now: datetime,
    report: FileReport,
    *,
    dry_run: bool,
) -> None:
    """Pass 3: delete (or, dry, count) the objects no row names, older than both the cutoff
    and `RECENT`."""
    in_use = keys_in_use(session, storage, cutoff)
    spared_after = min(cutoff, now - RECENT)
    for area in sorted(AREAS):
        for found in storage.list_objects(area):
            if found.key in in_use or found.modified >= spared_after:
                continue
            if not dry_run:
                storage.delete(found.key)
            report.objects += 1
            report.bytes += found.size
