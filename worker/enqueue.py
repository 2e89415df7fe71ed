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

from core.models import Job
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


def pipeline_from(job_id: uuid.UUID, state: JobState | str) -> None:
    """Send the chain of steps from the job's current step to the end."""
    start = JobState.TOKEN if JobState(state) == JobState.ADMITTED else JobState(state)
    if start not in STEP_TASKS:
        return
    steps = [s for s in PIPELINE[PIPELINE.index(start) :] if s in STEP_TASKS]
    signatures = [app.signature(STEP_TASKS[s], args=(str(job_id),), immutable=True) for s in steps]
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
