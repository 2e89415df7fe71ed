"""`GET /metrics` in the Prometheus text format, computed by the API from shared state.

Why not counters in the workers: they are other processes (prefork children that come and go,
often on other hosts), so in-process counters would never reach the API's `/metrics`, and
multiprocess mode needs a directory shared by every process. Everything here is read at scrape
time from what all processes already share:

- gauges (jobs by state, batches by status, deliveries by status, credits) from one GROUP BY each;
- queue depths from Redis `LLEN` of the four Celery queues (with their priority sub-queues);
- counters and histograms (step latency, backend results by step and code, 429s, retries)
  from `job_events`, which every step writes. Each API process keeps running totals and reads
  only events newer than the last scrape (by id, using the primary key), so a scrape costs a
  few rows, not the table. The first scrape of a process reads all events, so every API
  process reports the same totals. Events younger than `EVENT_SETTLE_S` wait for the next
  scrape: an id is allocated before its transaction commits, and a lower one may still land.
  A step is the proxy for the backend endpoint it calls (token, session, upload, prompt, ...).
"""

import hmac
import logging
import threading
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import redis
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from api.errors import error_body
from core.broker import consumer_key
from core.db import new_session
from core.repo import metrics as queries
from core.repo.tenants import tenant_names
from core.settings import Settings
from core.states import BatchStatus, JobState

log = logging.getLogger(__name__)
router = APIRouter(tags=["operations"])

QUEUES = ("pipeline", "stream", "poll", "webhooks", "schedules")
PRIORITY_SEPARATOR = "\x06\x16"
OVERDUE_S = 60.0
LATENCY_BOUNDS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
EVENT_SETTLE_S = 5.0
DELIVERY_STATUSES = ("pending", "delivered", "failed")

Labels = tuple[str, ...]


class EventTotals:
    """Running totals over `job_events`, advanced by id on each scrape (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.last_id = 0
        self.latency: dict[Labels, list[float]] = {}
        """(step, kind) -> [bucket counts..., count, sum of seconds]."""
        self.outcomes: dict[Labels, int] = defaultdict(int)
        """(step, kind, http_status, backend_code, code) -> count."""

    def advance(self) -> None:
        bounds_ms = [bound * 1000 for bound in LATENCY_BOUNDS_S]
        with self._lock, new_session() as session:
            upto = queries.settled_event_range(session, self.last_id, EVENT_SETTLE_S)
            if upto <= self.last_id:
                return
            for step, kind, under, count, total_ms in queries.latency_buckets(
                session, self.last_id, upto, bounds_ms
            ):
                row = self.latency.setdefault((step, kind), [0.0] * (len(bounds_ms) + 2))
                for index, value in enumerate([*under, count, total_ms / 1000]):
                    row[index] += value
            for step, kind, status, backend, code, count in queries.outcome_counts(
                session, self.last_id, upto
            ):
                key = (step, kind, _label(status), _label(backend), code or "")
                self.outcomes[key] += count
            self.last_id = upto


def _label(value: Any) -> str:
    return "" if value is None else str(value)


class NemoCollector(Collector):
    """Reads Postgres and Redis at scrape time; see the module docstring."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.events = EventTotals()

    def collect(self) -> Iterator[Metric]:
        try:
            yield from self._from_postgres()
        except Exception:
            log.warning("metrics: Postgres could not be read", exc_info=True)
            yield _gauge("nemo_database_up", "1 when Postgres answered this scrape.", 0)
        else:
            yield _gauge("nemo_database_up", "1 when Postgres answered this scrape.", 1)
        yield from self._queues()

    def _from_postgres(self) -> Iterator[Metric]:
        self.events.advance()
        with new_session() as session:
            jobs = queries.job_counts(session)
            batches = queries.batch_counts(session)
            deliveries = queries.delivery_counts(session)
            balances = queries.credit_balances(session)
            names = tenant_names(session) if self.settings.metrics_tenant_names else {}
            overdue, oldest_s = queries.overdue_jobs(session, OVERDUE_S)
        if overdue:
            log.warning(
                "%d jobs fell due over %.0f s ago and nothing picked them up (the oldest %.0f s "
                "ago): check that the workers and beat run and consume",
                overdue, OVERDUE_S, oldest_s,
            )  # fmt: skip
        yield _gauge(
            "nemo_jobs_overdue",
            f"Jobs due for over {OVERDUE_S:.0f} s that nothing picked up: a stalled pipeline.",
            overdue,
        )
        yield _gauge(
            "nemo_jobs_overdue_oldest_seconds", "How long the oldest overdue job waits.", oldest_s
        )
        yield _by_label("nemo_jobs", "Jobs by state.", "state", jobs, [s.value for s in JobState])
        yield _by_label(
            "nemo_batches", "Batches by status.", "status", batches, [s.value for s in BatchStatus]
        )
        yield _by_label(
            "nemo_webhook_deliveries",
            "Webhook deliveries by status.",
            "status",
            deliveries,
            DELIVERY_STATUSES,
        )
        credits = {
            name: GaugeMetricFamily(
                f"nemo_credits_{name}", f"Backend credits {name}, as last seen.", labels=["account"]
            )
            for name in ("available", "frozen", "total")
        }
        for balance in balances:
            account = _account_label(balance.account, names)
            if account is None:
                continue
            credits["available"].add_metric([account], balance.available)
            credits["frozen"].add_metric([account], balance.frozen)
            credits["total"].add_metric([account], balance.total)
        yield from credits.values()
        yield from self._event_metrics()

    def _event_metrics(self) -> Iterator[Metric]:
        latency = HistogramMetricFamily(
            "nemo_step_duration_seconds",
            "How long step runs took, by step and outcome (step_done, retry, error, wait).",
            labels=["step", "outcome"],
        )
        for (step, kind), row in sorted(self.events.latency.items()):
            buckets = [
                (floatToGoString(bound), row[index]) for index, bound in enumerate(LATENCY_BOUNDS_S)
            ] + [("+Inf", row[-2])]
            latency.add_metric([step, kind], buckets, sum_value=row[-1])
        yield latency
        calls = CounterMetricFamily(
            "nemo_backend_results",
            "Step outcomes by step (the backend endpoint it calls), HTTP status and backend "
            "code; `ok` for a step done.",
            labels=["step", "outcome", "http_status", "backend_code"],
        )
        retries = CounterMetricFamily(
            "nemo_retries",
            "Steps retried after backoff, by step and reason.",
            labels=["step", "code"],
        )
        limited = CounterMetricFamily(
            "nemo_rate_limited", "Backend HTTP 429 answers that led to a retry.", labels=["step"]
        )
        per_call: dict[Labels, int] = defaultdict(int)
        per_retry: dict[Labels, int] = defaultdict(int)
        per_429: dict[Labels, int] = defaultdict(int)
        for (step, kind, status, backend, code), count in self.events.outcomes.items():
            outcome = "ok" if kind == "step_done" else kind
            per_call[(step, outcome, status, backend)] += count
            if kind == "retry":
                per_retry[(step, code)] += count
            if status == "429" or code == "rate_limited":
                per_429[(step,)] += count
        for family, values in ((calls, per_call), (retries, per_retry), (limited, per_429)):
            for labels, count in sorted(values.items()):
                family.add_metric(list(labels), count)
            yield family

    def _queues(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "nemo_queue_depth", "Messages waiting in a queue.", labels=["queue"]
        )
        consumers = GaugeMetricFamily(
            "nemo_queue_consumers",
            "Workers that consume a queue and said so within their last heartbeats.",
            labels=["queue"],
        )
        client = redis.Redis.from_url(
            self.settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        try:
            for queue in QUEUES:
                keys = [queue, *(f"{queue}{PRIORITY_SEPARATOR}{n}" for n in range(1, 10))]
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.llen(key)
                waiting = sum(int(n) for n in pipe.execute())
                live = sum(1 for _ in client.scan_iter(match=consumer_key(queue, "*"), count=100))
                depth.add_metric([queue], waiting)
                consumers.add_metric([queue], live)
                if waiting and not live:
                    log.warning(
                        "%d messages wait in the %s queue and no worker consumes it", waiting, queue
                    )
        except redis.RedisError:
            log.warning("metrics: Redis could not be read", exc_info=True)
            yield _gauge("nemo_redis_up", "1 when Redis answered this scrape.", 0)
            return
        finally:
            client.close()
        yield depth
        yield consumers
        yield _gauge("nemo_redis_up", "1 when Redis answered this scrape.", 1)


def _account_label(account: str, names: dict[str, str]) -> str | None:
    """`shared`, or a tenant's own account by name when the operator asked (names given);
    a tenant's id or name never shows otherwise."""
    if not account.startswith("tenant:"):
        return account
    name = names.get(account.removeprefix("tenant:"))
    return f"tenant:{name}" if name else None


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _by_label(
    name: str, documentation: str, label: str, counts: dict[str, int], known: Any
) -> GaugeMetricFamily:
    """A gauge per value of `label`, every known value present (zero included)."""
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for value in sorted({*known, *counts}):
        family.add_metric([value], counts.get(value, 0))
    return family


def metrics_registry(settings: Settings) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NemoCollector(settings))
    return registry


def _scraper_allowed(request: Request, settings: Settings) -> bool:
    """The request carries METRICS_TOKEN (compared in constant time); never a tenant's key."""
    expected = settings.metrics_token
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


@router.get("/metrics", include_in_schema=False)
def get_metrics(request: Request) -> Response:
    """Prometheus scrape endpoint, behind its own token (METRICS_TOKEN), not an API key."""
    settings: Settings = request.app.state.settings
    if not _scraper_allowed(request, settings):
        how = (
            "send METRICS_TOKEN as `Authorization: Bearer <token>`"
            if settings.metrics_token
            else "metrics are off: set METRICS_TOKEN on the API and send it as "
            "`Authorization: Bearer <token>`"
        )
        return JSONResponse(
            error_body("unauthorized", how), 401, headers={"WWW-Authenticate": "Bearer"}
        )
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
