"""Send Celery tasks by name without importing the worker: core's only view of the broker.

The API (and the CLI) enqueue `worker.dispatch` here after their commit. A message that fails
to go out is not an error for the caller: the worker's beat re-dispatches from Postgres.
"""

import logging
import uuid
from functools import lru_cache
from typing import Any

import redis
from celery import Celery

from core.settings import get_settings

log = logging.getLogger(__name__)

DISPATCH_TASK = "worker.dispatch"
CANCEL_RENDERS_TASK = "worker.cancel_renders"
FETCH_INPUTS_TASK = "worker.fetch_inputs"
PIPELINE_QUEUE = "pipeline"
SCHEDULES_QUEUE = "schedules"
_TIMEOUT_S = 2.0


@lru_cache(maxsize=4)
def _client(broker_url: str) -> Celery:
    app = Celery("nemo-batch", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry=False,
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=_TIMEOUT_S,
        broker_transport_options={
            "socket_timeout": _TIMEOUT_S,
            "socket_connect_timeout": _TIMEOUT_S,
        },
    )
    return app


def send_task(
    name: str, kwargs: dict[str, Any], queue: str = PIPELINE_QUEUE, broker_url: str | None = None
) -> bool:
    """Publish one task message; False (and a warning) when the broker cannot be reached."""
    app = _client(broker_url or get_settings().redis_url)
    try:
        with app.producer_or_acquire() as producer:
            # Declared on every send: kombu caches declarations, and after a Redis restart an
            # undeclared queue's binding is gone and the message would be silently dropped.
            app.amqp.queues[queue].bind(producer.channel).declare()
            app.send_task(
                name,
                kwargs=kwargs,
                queue=queue,
                serializer="json",
                retry=False,
                producer=producer,
            )
    except Exception as error:  # kombu raises many kinds; none of them may fail the caller
        log.warning("could not send %s (%s); beat will re-dispatch from Postgres", name, error)
        return False
    return True


def send_dispatch(reason: str, broker_url: str | None = None, **ids: str) -> bool:
    """Ask the dispatcher to admit queued jobs now (new batch, retry, resume)."""
    return send_task(DISPATCH_TASK, {"reason": reason, **ids}, broker_url=broker_url)


def send_fetch_inputs(batch_id: uuid.UUID, broker_url: str | None = None) -> bool:
    """Ask a worker to keep the new batch's URL inputs in storage now, before they expire.
    Best effort: each job's own `fetch` step keeps whatever this did not."""
    return send_task(FETCH_INPUTS_TASK, {"batch_id": str(batch_id)}, broker_url=broker_url)


def send_cancel_renders(job_ids: list[uuid.UUID], broker_url: str | None = None) -> bool:
    """Ask a worker to cancel the backend renders of jobs just canceled (the API never calls
    the backend). Best effort: a lost message leaves a render to finish unused."""
    if not job_ids:
        return True
    ids = [str(job_id) for job_id in job_ids]
    return send_task(CANCEL_RENDERS_TASK, {"job_ids": ids}, broker_url=broker_url)


def consumer_key(queue: str, hostname: str) -> str:
    """The Redis key by which a healthy worker says it consumes `queue` (it expires); the
    worker's watchdog writes it, /metrics counts it."""
    return f"nemo:consumer:{queue}:{hostname}"


def broker_reachable(broker_url: str | None = None) -> bool:
    """True when Redis answers a PING within a short timeout."""
    client = redis.Redis.from_url(
        broker_url or get_settings().redis_url,
        socket_timeout=_TIMEOUT_S,
        socket_connect_timeout=_TIMEOUT_S,
    )
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()
