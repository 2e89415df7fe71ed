"""Batch answers (the batch input, shared with schedules, is `core.batch_input`)."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.states import BatchStatus


class BatchOut(BaseModel):
    id: uuid.UUID
    name: str
    status: BatchStatus
    priority: int
    item_count: int
    prompt_template: str
    webhook_url: str | None
    options: dict[str, Any]
    counts: dict[str, int] = Field(description="Jobs per state; every state is present.")
    progress: float = Field(description="Final jobs / all jobs, 0..1.")
    warning: str | None
    estimated_credits: int | None
    created_at: datetime
    finished_at: datetime | None


class BatchPage(BaseModel):
    items: list[BatchOut]
    next_cursor: str | None


class BatchActionOut(BaseModel):
    batch: BatchOut
    changed: int = Field(description="How many jobs the action changed.")
    dispatched: bool | None = Field(
        default=None, description="False when the broker was down (beat re-dispatches)."
    )


def batch_out(batch: Any, counts: dict[str, int]) -> BatchOut:
    from core.states import FINAL

    total = sum(counts.values())
    final = sum(count for state, count in counts.items() if state in FINAL)
    return BatchOut(
        id=batch.id,
        name=batch.name,
        status=batch.status,
        priority=batch.priority,
        item_count=batch.item_count,
        prompt_template=batch.prompt_template,
        webhook_url=batch.webhook_url,
        options=batch.options,
        counts=counts,
        progress=round(final / total, 4) if total else 0.0,
        warning=batch.warning,
        estimated_credits=batch.estimated_credits,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
    )
