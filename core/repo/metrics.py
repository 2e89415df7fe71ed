"""Aggregate queries behind `GET /metrics`: one GROUP BY each, cheap enough for every scrape."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from core.models import Batch, CreditBalance, Job, JobEvent, WebhookDelivery
from core.states import FINAL, JobState


def job_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state))
    return {state: int(count) for state, count in rows}


def overdue_jobs(session: Session, overdue_s: float) -> tuple[int, float]:
    """Jobs whose next attempt fell due more than `overdue_s` ago and that nothing picked up,
    whatever the cause, and the age of the oldest in seconds (jobs waiting for credits wait on
    purpose and are not counted)."""
    due = Job.next_attempt_at
    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, overdue_s)
    count, oldest = session.execute(
        select(func.count(), func.min(due)).where(
            Job.state.not_in([*(state.value for state in FINAL), JobState.WAITING_CREDITS.value]),
            due < cutoff,
        )
    ).one()
    if not count:
        return 0, 0.0
    age = session.scalar(select(func.extract("epoch", func.now() - oldest)))
    return int(count), float(age or 0)


def batch_counts(session: Session) -> dict[str, int]:
    rows = session.execute(select(Batch.status, func.count()).group_by(Batch.status))
    return {status: int(count) for status, count in rows}


def delivery_counts(session: Session) -> dict[str, int]:
    rows = session.execute(
        select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
    )
    return {status: int(count) for status, count in rows}


def credit_balances(session: Session) -> list[CreditBalance]:
    return list(session.scalars(select(CreditBalance).order_by(CreditBalance.account)))


def settled_event_range(session: Session, after_id: int, lag_s: float) -> int:
    """The highest event id up to which every event is older than `lag_s` seconds: ids are
    allocated before commit, so a just-written id may still have a lower one in flight."""
    cutoff = func.now() - func.make_interval(0, 0, 0, 0, 0, 0, lag_s)
    first_fresh = session.scalar(
        select(func.min(JobEvent.id)).where(JobEvent.id > after_id, JobEvent.at >= cutoff)
    )
    if first_fresh is not None:
        return int(first_fresh) - 1
    newest = session.scalar(select(func.max(JobEvent.id)).where(JobEvent.id > after_id))
    return int(newest) if newest is not None else after_id


def latency_buckets(
    session: Session, after_id: int, upto_id: int, bounds_ms: Sequence[float]
) -> list[tuple[str, str, list[int], int, int]]:
    """Per (step, kind) for events in (after_id, upto_id] with a latency: cumulative counts
    under each bound, the count and the sum of milliseconds."""
    latency = JobEvent.latency_ms
    columns: list[Any] = [func.count().filter(latency <= bound) for bound in bounds_ms]
    statement = (
        select(JobEvent.step, JobEvent.kind, func.count(), func.sum(latency), *columns)
        .where(JobEvent.id > after_id, JobEvent.id <= upto_id, latency.is_not(None))
        .group_by(JobEvent.step, JobEvent.kind)
    )
    return [
        (step, kind, [int(c) for c in under], int(count), int(total or 0))
        for step, kind, count, total, *under in session.execute(statement)
    ]


def outcome_counts(
    session: Session, after_id: int, upto_id: int
) -> list[tuple[str, str, int | None, int | None, str | None, int]]:
    """Per (step, kind, http status, backend code, our code): how many step outcomes."""
    code = JobEvent.data["code"].astext
    statement = (
        select(
            JobEvent.step,
            JobEvent.kind,
            JobEvent.http_status,
            JobEvent.backend_code,
            code,
            func.count(),
        )
        .where(
            JobEvent.id > after_id,
            JobEvent.id <= upto_id,
            JobEvent.kind.in_(["step_done", "retry", "error", "wait"]),
        )
        .group_by(literal_column("1"), literal_column("2"), literal_column("3"))
        .group_by(literal_column("4"), literal_column("5"))
    )
    return [
        (step, kind, status, backend, our_code, int(count))
        for step, kind, status, backend, our_code, count in session.execute(statement)
    ]
