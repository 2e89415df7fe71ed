"""RETENTION_DAYS: job events and finished webhook deliveries older than that are deleted, and
so are the files of jobs final for longer and the assets no job within it uses
(`core.retention_files`), by beat (`worker.apply_retention`) or by hand (`nemo-batch retention
[--dry-run]`, which counts what would go and deletes nothing).

Pending deliveries are kept whatever their age (their own WEBHOOK_MAX_AGE_S ends them), and so
is everything while RETENTION_DAYS is unset.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, delete, func, select
from sqlalchemy.orm import Session

from core.models import JobEvent, WebhookDelivery
from core.repo.jobs import utcnow
from core.retention_files import (
    FileReport,
    end_of_page,
    expire_assets,
    expire_outputs,
    sweep_objects,
)
from core.storage import Storage

FINISHED_DELIVERIES = ("delivered", "failed")


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    events: int
    deliveries: int
    dry_run: bool
    files: FileReport = field(default_factory=FileReport)

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.events} job events and {self.deliveries} finished webhook deliveries "
            f"older than {self.cutoff:%Y-%m-%d %H:%M} UTC; {self.files.words(verb)}"
        )


def _old_events(cutoff: datetime) -> ColumnElement[bool]:
    return JobEvent.at < cutoff


def _old_deliveries(cutoff: datetime) -> ColumnElement[bool]:
    return (WebhookDelivery.created_at < cutoff) & WebhookDelivery.status.in_(FINISHED_DELIVERIES)


def _deleted(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def apply_retention(
    session: Session,
    days: float,
    *,
    dry_run: bool,
    storage: Storage | None = None,
    now: datetime | None = None,
) -> RetentionReport:
    """Delete (or, dry, count) what is older than `days` (`now`: a test's clock). With a
    storage, files too: the rows' changes are committed page by page before any file is
    deleted; a dry run rolls them back. Without one, the caller commits."""
    now = now or utcnow()
    cutoff = now - timedelta(days=days)
    if dry_run:
        events = session.scalar(select(func.count()).where(_old_events(cutoff))) or 0
        deliveries = session.scalar(select(func.count()).where(_old_deliveries(cutoff))) or 0
    else:
        events = _deleted(session.execute(delete(JobEvent).where(_old_events(cutoff))))
        deliveries = _deleted(
            session.execute(delete(WebhookDelivery).where(_old_deliveries(cutoff)))
        )
    files = FileReport()
    if storage is not None:
        end_page = end_of_page(session, dry_run)
        if not dry_run:
            session.commit()  # the events and deliveries
        expire_outputs(session, cutoff, now, days, files, end_page)
        expire_assets(session, cutoff, files, end_page)
        sweep_objects(session, storage, cutoff, now, files, dry_run=dry_run)
        if dry_run:
            session.rollback()
    return RetentionReport(cutoff, int(events), int(deliveries), dry_run, files)
