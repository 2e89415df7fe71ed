"""RETENTION_DAYS: old job events and finished deliveries go, a dry run only counts them,
and pending deliveries and recent rows stay."""

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from core.db import session_scope
from core.models import Batch, Job, JobEvent, WebhookDelivery
from core.repo.jobs import utcnow
from core.repo.tenants import get_or_create_tenant


def rows(days_old: float) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A job with an event and a batch with a delivery of each status, `days_old` days old."""
    when = utcnow() - timedelta(days=days_old)
    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        batch = Batch(tenant_id=tenant.id, name="old", prompt_template="{title}", item_count=1)
        session.add(batch)
        session.flush()
        job = Job(batch_id=batch.id, tenant_id=tenant.id, item_index=0, input={}, options={})
        session.add(job)
        session.flush()
        session.add(JobEvent(job_id=job.id, at=when, step="token", kind="step_done"))
        deliveries = []
        for status in ("delivered", "failed", "pending"):
            delivery = WebhookDelivery(
                tenant_id=tenant.id,
                batch_id=batch.id,
                event="job.succeeded",
                url="https://example.com/hook",
                payload={},
                status=status,
                created_at=when,
            )
            session.add(delivery)
            session.flush()
            deliveries.append(delivery.id)
        return job.id, deliveries


def kept(job_id: uuid.UUID, deliveries: list[uuid.UUID]) -> tuple[int, int]:
    with session_scope() as session:
        events = session.scalar(
            select(func.count()).select_from(JobEvent).where(JobEvent.job_id == job_id)
        )
        left = session.scalar(
            select(func.count())
            .select_from(WebhookDelivery)
            .where(WebhookDelivery.id.in_(deliveries))
        )
        return int(events or 0), int(left or 0)


def test_old_events_and_finished_deliveries_go_and_a_dry_run_only_counts(settings: Any) -> None:
    from cli.main import app

    old_job, old_deliveries = rows(days_old=40)
    new_job, new_deliveries = rows(days_old=1)

    dry = CliRunner().invoke(app, ["retention", "--days", "30", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete" in dry.output
    assert kept(old_job, old_deliveries) == (1, 3)

    done = CliRunner().invoke(app, ["retention", "--days", "30"])
    assert done.exit_code == 0, done.output
    assert "deleted" in done.output
    assert kept(old_job, old_deliveries) == (0, 1)  # the pending delivery stays
    assert kept(new_job, new_deliveries) == (1, 3)


def test_without_retention_days_beat_keeps_everything(settings: Any) -> None:
    from cli.main import app
    from worker.retention import apply_configured

    old_job, old_deliveries = rows(days_old=400)
    assert settings.retention_days is None
    assert "everything is kept" in apply_configured()
    assert kept(old_job, old_deliveries) == (1, 3)
    assert CliRunner().invoke(app, ["retention"]).exit_code == 1
