"""Webhook deliveries: the outbox rows, their attempts and the claim of due retries.

A delivery is `pending` until a receiver answers 2xx (`delivered`) or its retries run out
(`failed`). While an attempt is out, `next_attempt_at` is pushed one lease ahead, so neither the
claimer nor a duplicate message starts a second attempt; a worker that dies mid-attempt leaves
the row due again when the lease ends.
"""

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Batch, WebhookDelivery
from core.payloads import batch_data
from core.repo.jobs import utcnow
from core.repo.paging import keyset_page

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


def add_delivery(
    session: Session,
    *,
    tenant_id: uuid.UUID,
    batch_id: uuid.UUID,
    job_id: uuid.UUID | None,
    event: str,
    url: str,
    data: dict[str, Any],
    grace_s: float,
) -> WebhookDelivery:
    """Record a delivery in the caller's transaction; the claimer sends it after `grace_s` if
    the message sent after commit never arrives."""
    now = utcnow()
    delivery = WebhookDelivery(
        id=uuid.uuid4(),
        tenant_id=tenant_id,
        batch_id=batch_id,
        job_id=job_id,
        event=event,
        url=url,
        payload={},
        status=PENDING,
        attempts=0,
        next_attempt_at=now + timedelta(seconds=grace_s),
        created_at=now,
    )
    delivery.payload = {
        "id": str(delivery.id),
        "event": event,
        "created_at": now.isoformat(),
        "data": data,
    }
    session.add(delivery)
    return delivery


def add_batch_completed(session: Session, batch: Batch, grace_s: float) -> WebhookDelivery:
    """`batch.completed` for a batch that just reached its final status, whatever ended it
    (its last job, or a cancel through the API); the caller checked it has a webhook URL."""
    assert batch.webhook_url is not None
    session.flush()  # the jobs' new states count in the batch summary
    return add_delivery(
        session,
        tenant_id=batch.tenant_id,
        batch_id=batch.id,
        job_id=None,
        event="batch.completed",
        url=batch.webhook_url,
        data=batch_data(session, batch),
        grace_s=grace_s,
    )


def begin_attempt(
    session: Session, delivery_id: uuid.UUID, expected_attempts: int, lease_s: float
) -> WebhookDelivery | None:
    """Take attempt number `expected_attempts + 1`, or None if it is not ours to make (already
    delivered or given up, or another message already took this attempt)."""
    delivery = session.scalars(
        select(WebhookDelivery).where(WebhookDelivery.id == delivery_id).with_for_update()
    ).first()
    if delivery is None or delivery.status != PENDING or delivery.attempts != expected_attempts:
        return None
    delivery.attempts += 1
    delivery.next_attempt_at = utcnow() + timedelta(seconds=lease_s)
    return delivery


def record_success(session: Session, delivery_id: uuid.UUID, status_code: int) -> None:
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None:
        return
    delivery.status = DELIVERED
    delivery.delivered_at = utcnow()
    delivery.next_attempt_at = None
    delivery.last_status_code = status_code
    delivery.last_error = None


def record_failure(
    session: Session,
    delivery_id: uuid.UUID,
    *,
    status_code: int | None,
    error: str,
    retry_at: datetime | None,
) -> None:
    """Note a failed attempt; no `retry_at` means the delivery has given up."""
    delivery = session.get(WebhookDelivery, delivery_id, with_for_update=True)
    if delivery is None or delivery.status != PENDING:
        return
    delivery.last_status_code = status_code
    delivery.last_error = error[:2000]
    delivery.next_attempt_at = retry_at
    if retry_at is None:
        delivery.status = FAILED


def claim_due(session: Session, limit: int, lease_s: float) -> list[tuple[uuid.UUID, int]]:
    """Due pending deliveries, each leased for `lease_s` (SKIP LOCKED: many claimers are safe);
    returns (id, attempts made so far) to send."""
    now = utcnow()
    rows = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    for row in rows:
        row.next_attempt_at = now + timedelta(seconds=lease_s)
    return [(row.id, row.attempts) for row in rows]


def list_for_batch(
    session: Session,
    tenant_id: uuid.UUID,
    batch_id: uuid.UUID,
    *,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[WebhookDelivery]:
    """A page of a batch's deliveries, oldest first, after the keyset `after`."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.batch_id == batch_id, WebhookDelivery.tenant_id == tenant_id
    )
    page = keyset_page(
        query,
        WebhookDelivery.created_at,
        WebhookDelivery.id,
        after=after,
        newest_first=False,
        limit=limit,
    )
    return list(session.scalars(page))
