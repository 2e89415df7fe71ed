"""The Celery application: Redis broker, JSON, acks late, routes to the four queues.

Reliability settings follow shared/RELIABILITY.md: job state lives in Postgres, every message may
be delivered twice, and the visibility timeout stays above the longest task plus countdown.
"""

from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_init

from core.db import dispose_after_fork
from core.logging import configure_logging
from core.settings import get_settings
from worker.broker_transport import transport_for

QUEUES = ("pipeline", "stream", "poll", "webhooks", "schedules")

TASK_ROUTES = {
    "worker.prompt": {"queue": "stream"},
    "worker.render_poll": {"queue": "poll"},
    "worker.deliver_webhook": {"queue": "webhooks"},
    "worker.fire_schedules": {"queue": "schedules"},
    "worker.*": {"queue": "pipeline"},
}


def time_limits() -> dict[str, dict[str, float]]:
    """Soft and hard time limits of the tasks that differ from the default: a webhook try
    lives within its own deadline, a stream turn within its 15-minute ceiling (on the threads
    pool Celery cannot enforce limits: the turn's own deadline does, worker/steps/prompt.py)."""
    settings = get_settings()
    webhook = settings.webhook_timeout_s
    stream = settings.nemo_stream_deadline_s
    schedule = settings.schedule_run_deadline_s
    return {
        "worker.deliver_webhook": {"soft_time_limit": webhook + 10, "time_limit": webhook + 20},
        "worker.prompt": {"soft_time_limit": stream + 120, "time_limit": stream + 300},
        "worker.fire_schedules": {"soft_time_limit": schedule, "time_limit": schedule + 60},
    }


def _visibility_timeout_s() -> int:
    settings = get_settings()
    longest_task = max(
        settings.nemo_stream_deadline_s + 600,
        settings.task_time_limit_s,
        settings.schedule_run_deadline_s + 60,
    )
    return int(max(3600, 2 * longest_task))


def _beat_schedule() -> dict[str, dict[str, Any]]:
    """Few tasks a minute beside the steps: one tick for the frequent passes
    (worker/housekeeping.py) and the slow passes. No `expires` on the tick: behind a long
    queue every tick would expire and due waits would never be claimed."""
    settings = get_settings()
    tick_s = max(settings.claim_interval_s, 0.5)
    return {
        "tick": {"task": "worker.tick", "schedule": tick_s},
        "sweep": {"task": "worker.sweep", "schedule": settings.sweep_interval_s},
        "check-credits": {
            "task": "worker.check_credits",
            "schedule": settings.credits_check_interval_s,
        },
        "apply-retention": {
            "task": "worker.apply_retention",
            "schedule": settings.retention_check_interval_s,
        },
        "fire-schedules": {
            "task": "worker.fire_schedules",
            "schedule": settings.schedule_check_interval_s,
            "options": {"expires": settings.schedule_check_interval_s},
        },
    }


def create_celery() -> Celery:
    settings = get_settings()
    visibility = _visibility_timeout_s()
    app = Celery("nemo-batch", broker=settings.redis_url, include=["worker.tasks"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        # Pacing is our own shared limiter in Redis (worker/ratelimit.py); Celery's per-task
        # rate limits are unused, and skipping them saves the consumer work on every message.
        worker_disable_rate_limits=True,
        worker_cancel_long_running_tasks_on_connection_loss=True,
        broker_connection_retry_on_startup=True,
        broker_transport=transport_for(settings.redis_url),
        broker_transport_options={"visibility_timeout": visibility},
        result_backend_transport_options={"visibility_timeout": visibility},
        visibility_timeout=visibility,
        task_default_queue="pipeline",
        task_routes=TASK_ROUTES,
        # Every task ends: SoftTimeLimitExceeded first (the step records it), then the child
        # is killed and replaced (the message comes back: task_reject_on_worker_lost).
        task_soft_time_limit=settings.task_soft_time_limit_s,
        task_time_limit=settings.task_time_limit_s,
        task_annotations=time_limits(),
        # Task events cost about a tenth of the workers' CPU (bench/RESULTS.md). Flower turns
        # them on by itself every few seconds while it runs (its `enable_events`), so they are
        # paid for only while someone watches; `nemo-batch worker --events` forces them on.
        task_send_sent_event=False,
        worker_send_task_events=False,
        beat_schedule=_beat_schedule(),
        timezone="UTC",
    )
    return app


app = create_celery()

import worker.watchdog  # noqa: E402, F401  (connects the worker's own watchdog to its signals)


@worker_process_init.connect
def _after_fork(**_: Any) -> None:
    """Each prefork child opens its own database connections and HTTP pool."""
    dispose_after_fork()
    from worker.backend import reset_clients

    reset_clients()


@setup_logging.connect
def _json_logs(loglevel: int | str | None = None, **_: Any) -> None:
    """Replace Celery's root logger setup: worker and beat logs are JSON lines too."""
    configure_logging(get_settings(), level=loglevel or None)
