"""What a step task says about its job in Flower (Celery's `argsrepr`): ref, job, batch, attempt."""

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, bindparam, select

from core.models import Batch, Job

_LONGEST = 60


def _short(text: str) -> str:
    return text if len(text) <= _LONGEST else f"{text[: _LONGEST - 3]}..."


@dataclass(frozen=True)
class JobLabel:
    job_id: uuid.UUID
    ref: str | None
    item_index: int
    batch_name: str
    step_attempts: int

    def text(self, attempt: int) -> str:
        """`mug-1 (job 1a2b3c4d, batch spring, attempt 2)`; a job without a ref is `item 3`."""
        who = _short(self.ref) if self.ref else f"item {self.item_index}"
        return (
            f"{who} (job {str(self.job_id)[:8]}, batch {_short(self.batch_name)}, "
            f"attempt {attempt})"
        )


_LABEL = (
    select(Job.ref, Job.item_index, Batch.name, Job.step_attempts)
    .join(Batch, Batch.id == Job.batch_id)
    .where(Job.id == bindparam("job_id"))
)
"""Built once: read for every chain sent, where building it cost more than running it."""


def job_label(connection: Connection, job_id: uuid.UUID) -> JobLabel | None:
    row = connection.execute(_LABEL, {"job_id": job_id}).first()
    return JobLabel(job_id, *row) if row is not None else None
