"""What a step task says about its job in Flower (Celery's `argsrepr`): ref, job, batch, attempt."""

import uuid
from dataclasses import dataclass

from sqlalchemy import Connection, any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

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


_COLUMNS = select(Job.id, Job.ref, Job.item_index, Batch.name, Job.step_attempts).join(
    Batch, Batch.id == Job.batch_id
)
_LABELS = _COLUMNS.where(Job.id == any_(bindparam("job_ids", type_=ARRAY(Job.id.type))))
"""Built once: read for every chain sent, where building it cost more than running it."""


def job_labels(connection: Connection, job_ids: list[uuid.UUID]) -> dict[uuid.UUID, JobLabel]:
    """The labels of many jobs in one read (an admission pass, the claimer's due jobs)."""
    rows = connection.execute(_LABELS, {"job_ids": job_ids})
    return {row[0]: JobLabel(*row) for row in rows}
