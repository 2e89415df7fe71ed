"""Job rules shared by the API and the workers: the clock, and what a retry forgets. Every
change of a job's state is in `core.repo.transitions`."""

from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


RETRY_FORGETS: tuple[str, ...] = (
    "messages",
    "draft_hash",
    "draft",
    "render_id",
    "backend_render_id",
    "url_refreshes",
    "token_refused_since",
    "render_started_at",
    "render_failures",
    "renders_lost",
    "render_progress",
    "output_url",
)
"""Checkpoint keys a retry forgets: the agent is asked again and the video rendered again. The
session and the uploads are kept (free to reuse; a lost session is replaced when met)."""


def forget_for_retry(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in checkpoint.items() if key not in RETRY_FORGETS}
