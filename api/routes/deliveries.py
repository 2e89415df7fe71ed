"""Webhook deliveries of a batch: what was sent where, how often, and how it went."""

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from api.deps import IdPath, SessionDep, TenantDep, parse_id
from api.errors import NotFound
from api.openapi import errors
from api.pagination import DEFAULT_LIMIT, MAX_LIMIT, decode_time_cursor, encode_time_cursor
from core.repo import batches as batch_repo
from core.repo import deliveries as repo

router = APIRouter(prefix="/v1/batches", tags=["webhooks"])


class DeliveryOut(BaseModel):
    """One webhook delivery; the signing secret is never part of it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    batch_id: uuid.UUID
    job_id: uuid.UUID | None
    event: Literal["job.succeeded", "job.failed", "batch.completed"]
    url: str
    status: Literal["pending", "delivered", "failed"] = Field(
        description="pending (retries left), delivered or failed (gave up)."
    )
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime
    payload: dict[str, Any] = Field(description="The JSON body sent, as signed.")


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: str | None


@router.get(
    "/{batch_id}/deliveries",
    response_model=DeliveryPage,
    responses=errors(401, 404, 422),
    summary="A batch's webhook deliveries, oldest first",
)
def list_deliveries(
    batch_id: IdPath,
    tenant: TenantDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> DeliveryPage:
    batch = batch_repo.get_batch(session, tenant.id, parse_id(batch_id, "batch"))
    if batch is None:
        raise NotFound("batch")
    after = decode_time_cursor(cursor)
    rows = repo.list_for_batch(session, tenant.id, batch.id, limit=limit + 1, after=after)
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit and page:
        next_cursor = encode_time_cursor(page[-1])
    return DeliveryPage(
        items=[DeliveryOut.model_validate(row) for row in page], next_cursor=next_cursor
    )
