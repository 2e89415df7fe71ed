"""Events users subscribe to: `job.succeeded`, `job.failed` and `batch.completed` webhooks.

The deliveries are written in the transaction that finalised the job (an outbox), and sent by
messages published after its commit.
"""

from collections.abc import Callable
from functools import partial

from sqlalchemy.orm import Session

from core.models import Batch, Job
from core.payloads import job_data
from core.repo.deliveries import add_batch_completed, add_delivery
from core.settings import get_settings
from core.states import JobState
from worker.webhooks import attempt_lease_s, send_delivery

JOB_EVENTS = {JobState.SUCCEEDED.value: "job.succeeded", JobState.FAILED.value: "job.failed"}


def notifications_for(
    session: Session, job: Job, finished_batch: Batch | None
) -> list[Callable[[], None]]:
    """Webhook deliveries for a final job and, when it was the last, for its batch."""
    batch = finished_batch or session.get(Batch, job.batch_id)
    if batch is None or not batch.webhook_url:
        return []
    grace_s = attempt_lease_s(get_settings())
    add = partial(
        add_delivery,
        session,
        tenant_id=batch.tenant_id,
        batch_id=batch.id,
        url=batch.webhook_url,
        grace_s=grace_s,
    )
    deliveries = []
    event = JOB_EVENTS.get(job.state)
    if event is not None:
        deliveries.append(add(job_id=job.id, event=event, data=job_data(job)))
    if finished_batch is not None:
        deliveries.append(add_batch_completed(session, finished_batch, grace_s))
    return [partial(send_delivery, delivery.id, 0) for delivery in deliveries]
