"""Keyset paging (`core.repo.paging`): every row once, in order, ties on created_at broken by id."""

import uuid
from datetime import UTC, datetime, timedelta


def test_pages_of_rows_created_at_the_same_instant_show_each_row_once(settings: object) -> None:
    from core.db import session_scope
    from core.models import Batch, WebhookDelivery
    from core.repo.batches import list_batches
    from core.repo.deliveries import add_delivery, list_for_batch
    from core.repo.tenants import get_or_create_tenant

    instant = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"paging-{uuid.uuid4().hex[:8]}")
        batches = [
            Batch(
                tenant_id=tenant.id,
                name=f"b{n}",
                prompt_template="t",
                item_count=0,
                created_at=instant + timedelta(seconds=n // 3),
            )
            for n in range(7)
        ]
        session.add_all(batches)
        session.flush()
        for _ in range(5):
            delivery = add_delivery(
                session,
                tenant_id=tenant.id,
                batch_id=batches[0].id,
                job_id=None,
                event="batch.completed",
                url="http://127.0.0.1:9/",
                data={},
                grace_s=0,
            )
            delivery.created_at = instant
        tenant_id, batch_id = tenant.id, batches[0].id

    with session_scope() as session:
        newest_first: list[Batch] = []
        before = None
        while batch_page := list_batches(session, tenant_id, limit=2, before=before):
            newest_first += batch_page
            before = (batch_page[-1].created_at, batch_page[-1].id)
        oldest_first: list[WebhookDelivery] = []
        after = None
        while page := list_for_batch(session, tenant_id, batch_id, limit=2, after=after):
            oldest_first += page
            after = (page[-1].created_at, page[-1].id)

    keys = [(b.created_at, b.id) for b in newest_first]
    assert len(keys) == 7 and keys == sorted(keys, reverse=True)
    ids = [d.id for d in oldest_first]
    assert len(set(ids)) == 5 and ids == sorted(ids)
