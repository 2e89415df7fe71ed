"""What webhook receivers are sent about a job and a batch (README, "Webhooks")."""

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.models import Batch, Job
from core.repo.batches import state_counts


def _elapsed_s(start: datetime | None, end: datetime | None) -> float | None:
    return round((end - start).total_seconds(), 3) if start and end else None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_data(job: Job) -> dict[str, Any]:
    """A final job as receivers see it; download paths are relative to the API's base URL."""
    output = job.output or {}
    error = {"code": job.error_code, "message": job.error_message} if job.error_code else None
    return {
        "job_id": str(job.id),
        "batch_id": str(job.batch_id),
        "ref": job.ref,
        "item_index": job.item_index,
        "state": job.state,
        "error": error,
        "output": {
            "video_url": f"/v1/jobs/{job.id}/video",
            "poster_url": f"/v1/jobs/{job.id}/poster" if output.get("poster_path") else None,
            "duration": output.get("duration_s", output.get("duration")),
            "width": output.get("width"),
            "height": output.get("height"),
            "size": output.get("size"),
            "sha256": output.get("sha256"),
        }
        if output.get("path")
        else None,
        "attempts": job.attempts,
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "duration_s": _elapsed_s(job.started_at, job.finished_at),
    }


def batch_data(session: Session, batch: Batch) -> dict[str, Any]:
    counts = state_counts(session, [batch.id])[batch.id]
    return {
        "batch_id": str(batch.id),
        "name": batch.name,
        "status": batch.status,
        "item_count": batch.item_count,
        "counts": {state: count for state, count in counts.items() if count},
        "created_at": _iso(batch.created_at),
        "finished_at": _iso(batch.finished_at),
        "duration_s": _elapsed_s(batch.created_at, batch.finished_at),
    }
