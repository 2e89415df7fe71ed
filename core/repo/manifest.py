"""What a batch's manifest and zip read: its jobs' public facts in item order, page by page."""

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Job

PAGE = 1000


@dataclass(frozen=True)
class ManifestJob:
    id: uuid.UUID
    item_index: int
    ref: str | None
    title: str | None
    state: str
    error_code: str | None
    error_message: str | None
    output: dict[str, Any] | None


def _columns() -> Any:
    return select(
        Job.id,
        Job.item_index,
        Job.ref,
        Job.input["title"].astext,
        Job.state,
        Job.error_code,
        Job.error_message,
        Job.output,
    )


def product_page(
    session: Session,
    tenant_id: uuid.UUID,
    batch_id: uuid.UUID,
    *,
    state: str | None,
    after_index: int | None,
    limit: int,
) -> list[ManifestJob]:
    """One page of the batch's jobs in item order after `after_index` (the web page's grid)."""
    query = _columns().where(Job.batch_id == batch_id, Job.tenant_id == tenant_id)
    if state is not None:
        query = query.where(Job.state == state)
    if after_index is not None:
        query = query.where(Job.item_index > after_index)
    rows = session.execute(query.order_by(Job.item_index).limit(limit)).all()
    return [ManifestJob(*row) for row in rows]


def manifest_jobs(
    session: Session, tenant_id: uuid.UUID, batch_id: uuid.UUID, *, succeeded_only: bool = False
) -> Iterator[ManifestJob]:
    """Every job of the batch in item order, read `PAGE` rows at a time (keyset on the index),
    so 10,000 jobs never sit in memory at once."""
    after = -1
    while True:
        query = _columns().where(
            Job.batch_id == batch_id, Job.tenant_id == tenant_id, Job.item_index > after
        )
        if succeeded_only:
            query = query.where(Job.state == "succeeded")
        rows = session.execute(query.order_by(Job.item_index).limit(PAGE)).all()
        for row in rows:
            yield ManifestJob(*row)
        if len(rows) < PAGE:
            return
        after = rows[-1].item_index
