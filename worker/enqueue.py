"""Sending work to the broker: a job's chain of steps, dispatch, and what follows a final job.

Always called after the database commit that made the work due (a message for uncommitted work
could run before the row is visible, and a commit whose message is lost is recovered by the
sweeper).
"""

import logging
import uuid
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from celery import chain
from sqlalchemy.orm import Session

from core.db import get_engine
from core.models import Job
from core.repo.task_labels import JobLabel, job_labels
from core.repo.transitions import after_final
from core.settings import get_settings
from core.states import PIPELINE, JobState
from worker.backend import redis_client
from worker.celery_app import app

log = logging.getLogger("worker.enqueue")

STEP_TASKS: dict[JobState, str] = {
    JobState.TOKEN: "worker.token",
    JobState.FETCH: "worker.fetch",
    JobState.SESSION: "worker.session",
    JobState.UPLOAD: "worker.upload",
    JobState.PROMPT: "worker.prompt",
    JobState.EXPORT: "worker.export",
    JobState.RENDER: "worker.render_poll",
    JobState.DOWNLOAD: "worker.download",
}


NO_DECLARE: dict[str, Any] = {"declare": []}
"""Publish a step without declaring its queue first: on Redis a task goes straight to its
queue's list (Celery's direct routing), so the declaration kombu repeats before every publish
only cost CPU (a tenth of a chain's publish, bench figure 1); the workers declare their queues."""


def _read_labels(job_ids: list[uuid.UUID]) -> dict[uuid.UUID, JobLabel]:
    """How the jobs' step tasks read in Flower, in one read; none for a job that cannot be
    read (a label is for people: it never stops the pipeline)."""
    try:
        with get_engine().connect() as connection:
            return job_labels(connection, job_ids)
    except Exception:
        log.warning("could not read %d jobs for their task labels", len(job_ids), exc_info=True)
        return {}


def _labels(job_id: uuid.UUID, label: JobLabel | None, count: int) -> list[str]:
    """Each of `count` step tasks' label: the job it serves, not a bare UUID. The first step
    may be a retry (its attempts so far are kept); the steps after it start at 1."""
    if label is None:
        return [str(job_id)] * count
    return [label.text(label.step_attempts + 1 if index == 0 else 1) for index in range(count)]


def pipeline_from(job_id: uuid.UUID, state: JobState | str) -> None:
    """Send the chain of steps from the job's current step to the end."""
    pipelines_from([(job_id, state)])


def pipelines_from(jobs: Sequence[tuple[uuid.UUID, JobState | str]]) -> None:
    """Send each job's chain of steps from its current step to the end; their labels are read
    in one go (an admission pass or a claim of due waits sends hundreds)."""
    labels = _read_labels([job_id for job_id, _ in jobs]) if jobs else {}
    for job_id, state in jobs:
        start = JobState.TOKEN if JobState(state) == JobState.ADMITTED else JobState(state)
        if start not in STEP_TASKS:
            continue
        steps = [s for s in PIPELINE[PIPELINE.index(start) :] if s in STEP_TASKS]
        texts = _labels(job_id, labels.get(job_id), len(steps))
        signatures = [
            app.signature(
                STEP_TASKS[step], args=(str(job_id),), immutable=True, argsrepr=text, **NO_DECLARE
            )
            for step, text in zip(steps, texts, strict=True)
        ]
        chain(*signatures).apply_async()


def dispatch_soon() -> None:
    """Ask for an admission pass, at most one queued per second however many jobs finish."""
    try:
        if redis_client().set("nemo:dispatch-pending", "1", nx=True, ex=1):
            app.send_task("worker.dispatch", queue="pipeline")
    except Exception:  # beat runs dispatch regularly anyway
        log.warning("could not send worker.dispatch; beat will run it", exc_info=True)


def job_finished(session: Session, job: Job) -> list[Callable[[], None]]:
    """Bring the batch up to date and write its webhook rows (`after_final`); return what to
    send once the transaction commits."""
    return sends_after_final(after_final(session, job, webhook_grace_s()))


def webhook_grace_s() -> float:
    """How long a new webhook delivery is left to its first send before the claimer takes it."""
    from worker.webhooks import attempt_lease_s

    return attempt_lease_s(get_settings())


def sends_after_final(deliveries: list[uuid.UUID]) -> list[Callable[[], None]]:
    """What to send once a job's final state commits: an admission pass (its place in its
    tenant's limit is free) and its new webhook deliveries."""
    from worker.webhooks import send_delivery

    return [dispatch_soon, *(partial(send_delivery, delivery, 0) for delivery in deliveries)]
