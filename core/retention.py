"""RETENTION_DAYS: job events and finished webhook deliveries older than that are deleted, by
beat (`worker.apply_retention`) or by hand (`nemo-batch retention [--dry-run]`).

Pending deliveries are kept whatever their age (their own WEBHOOK_MAX_AGE_S ends them), and so
is everything while RETENTION_DAYS is unset. Outputs and assets (files) are not covered yet.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Result, delete, func, select
from sqlalchemy.orm import Session

from core.models import JobEvent, WebhookDelivery
from core.repo.jobs import utcnow

FINISHED_DELIVERIES = ("delivered", "failed")


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime
    events: int
    deliveries: int
    dry_run: bool

    def __str__(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        return (
            f"{verb} {self.events} job events and {self.deliveries} finished webhook deliveries "
            f"older than {self.cutoff:%Y-%m-%d %H:%M} UTC"
        )


def _old_events(cutoff: datetime) -> ColumnElement[bool]:
    return JobEvent.at < cutoff


def _old_deliveries(cutoff: datetime) -> ColumnElement[bool]:
    return (WebhookDelivery.created_at < cutoff) & WebhookDelivery.status.in_(FINISHED_DELIVERIES)


def _deleted(result: Result[Any]) -> int:
    return int(cast(CursorResult[Any], result).rowcount or 0)


def apply_retention(session: Session, days: float, *, dry_run: bool) -> RetentionReport:
    """Delete (or, dry, count) what is older than `days`; the caller commits."""
    cutoff = utcnow() - timedelta(days=days)
    if dry_run:
        events = session.scalar(select(func.count()).where(_old_events(cutoff))) or 0
        deliveries = session.scalar(select(func.count()).where(_old_deliveries(cutoff))) or 0
    else:
        events = _deleted(session.execute(delete(JobEvent).where(_old_events(cutoff))))
        deliveries = _deleted(
            session.execute(delete(WebhookDelivery).where(_old_deliveries(cutoff)))
        )
    return RetentionReport(cutoff, int(events), int(deliveries), dry_run)
