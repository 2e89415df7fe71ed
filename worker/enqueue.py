"""Sending work to the broker: a job's chain of steps, dispatch, and what follows a final job.

Always called after the database commit that made the work due (a message for uncommitted work
could run before the row is visible, and a commit whose message is lost is recovered by the
sweeper).
"""

import logging
import uuid
from collections.abc import Callable
from functools import partial

from celery import chain
from sqlalchemy.orm import Session

from core.db import get_engine
from core.models import Job
from core.repo.task_labels import job_label
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


def _labels(job_id: uuid.UUID, count: int) -> list[str]:
    """How each of `count` step tasks reads in Flower: the job it serves, not a bare UUID. The
    first step may be a retry (its attempts so far are kept); the steps after it start at 1."""
    try:
        with get_engine().connect() as connection:
            label = job_label(connection, job_id)
    except Exception:  # a label is for people; never let it stop the pipeline
        log.warning("could not read job %s for its task label", job_id, exc_info=True)
        label = None
    if label is None:
        return [str(job_id)] * count
    return [label.text(label.step_attempts + 1 if index == 0 else 1) for index in range(count)]


def pipeline_from(job_id: uuid.UUID, state: JobState | str) -> None:
    """Send the chain of steps from the job's current step to the end."""
    start = JobState.TOKEN if JobState(state) == JobState.ADMITTED else JobState(state)
    if start not in STEP_TASKS:
        return
    steps = [s for s in PIPELINE[PIPELINE.index(start) :] if s in STEP_TASKS]
    labels = _labels(job_id, len(steps))
    signatures = [
        app.signature(STEP_TASKS[step], args=(str(job_id),), immutable=True, argsrepr=label)
        for step, label in zip(steps, labels, strict=True)
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
    from worker.webhooks import attempt_lease_s, send_delivery

    deliveries = after_final(session, job, attempt_lease_s(get_settings()))
    return [dispatch_soon, *(partial(send_delivery, delivery, 0) for delivery in deliveries)]
