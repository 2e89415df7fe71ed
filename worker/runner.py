"""Run one step of one job: take its lease, call the step function, apply the outcome.

No database transaction is open while the backend is called: claim, commit, work, commit.
"""

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from core.db import autocommit, session_scope
from core.logging import log_fields
from core.models import Job, Tenant
from core.repo.jobs import utcnow
from core.repo.pipeline import pause_tenant
from core.repo.transitions import (
    LeaseLost,
    StepDone,
    add_event,
    advance_to_next_step,
    back_off,
    claim_step,
    finish_step,
    leased_job,
    merge_checkpoint,
    set_fields,
    transition,
    wait,
    wait_for_credits,
)
from core.settings import get_settings
from core.states import FINAL, JobState, next_step
from worker.backend import client_for, rate_limiter
from worker.leases import leases
from worker.nemo import NemoClient, errors
from worker.outcomes import Advance, Backoff, Fail, Outcome, Restart, Wait, WaitCredits
from worker.policy import Attempt, outcome_for
from worker.tokens import (
    ResolvedToken,
    configured_token,
    drop_anonymous_token,
    shared_anonymous_token,
)

log = logging.getLogger("worker.runner")


@dataclass
class StepContext:
    """What a step function may read and do: the job's data, a client, checkpoint writes."""

    job_id: uuid.UUID
    step: JobState
    step_attempts: int
    tenant_id: uuid.UUID
    input: dict[str, Any]
    options: dict[str, Any]
    checkpoint: dict[str, Any]
    token: ResolvedToken
    client: NemoClient
    lease_s: float
    save_checkpoint: "CheckpointSaver"
    """Where `save` writes: the job's row under the claim's lease (`saver_for`), or a fake."""
    batch_id: uuid.UUID | None = None
    lease: uuid.UUID | None = None
    """The claim's fencing token, for a write that must share a transaction with a checkpoint
    save (the download step's storage charge); None in unit tests' fakes."""

    def save(self, **values: Any) -> None:
        """Commit part of the checkpoint now, before a side effect that must not be repeated.
        Raises `LeaseLost` (nothing written) if the job is no longer this worker's."""
        self.save_checkpoint(values)
        self.checkpoint.update(values)


CheckpointSaver = Callable[[dict[str, Any]], None]


def saver_for(job_id: uuid.UUID, lease: uuid.UUID) -> CheckpointSaver:
    """Checkpoint saves of one claim: one statement each, fenced by the claim's lease token."""

    def save(values: dict[str, Any]) -> None:
        with autocommit() as connection:
            merge_checkpoint(connection, job_id, lease, values)

    return save


NOT_AN_ATTEMPT = frozenset({"rate_limited", "paced", "token_refresh"})
"""Backoffs that say nothing about the step itself: they do not use up its attempts."""

StepFunction = Callable[[StepContext], Outcome]
AfterCommit = Callable[[], None]


@dataclass(frozen=True)
class StepReport:
    """What became of one run of a step: whether the chain goes on, and whether the job is
    now waiting on the backend's 429s (shown in Flower as the task's result)."""

    advanced: bool
    throttled_since: datetime | None = None


def run_step(job_id: str | uuid.UUID, step: JobState, function: StepFunction) -> bool:
    """Run `step` for the job if it is the job's current step; True if the job moved on to the
    next step in pipeline order (so the chain may go on), False otherwise."""
    return run_step_reporting(job_id, step, function).advanced


def run_step_reporting(
    job_id: str | uuid.UUID, step: JobState, function: StepFunction
) -> StepReport:
    """`run_step`, telling also whether the job is throttled."""
    job_uuid = uuid.UUID(str(job_id))
    lease_s = get_settings().step_lease_s
    with autocommit() as connection:  # the claim is one statement: its own transaction
        claim = claim_step(connection, job_uuid, step, lease_s)
    if claim is None:
        return StepReport(False)
    attempts, tenant_id, batch_id = claim.step_attempts, claim.tenant_id, claim.batch_id
    if attempts > crash_limit():
        # Every try of this step took its worker down before recording an outcome (a crash,
        # running out of memory): running it again would take down the next worker too.
        crashed = _crashed(step, attempts - 1)
        return _record(job_uuid, step, claim.lease, crashed, 0, attempt=attempts)
    token = configured_token(tenant_id, claim.backend_token)
    started = time.monotonic()
    outcome: Outcome
    with leases.holding(job_uuid, claim.lease):
        try:
            token = token or shared_anonymous_token()  # the claim read the tenant's own
        except errors.NemoError as error:
            outcome = outcome_for(error, Attempt(step, attempts))
        else:
            context = StepContext(
                job_id=job_uuid,
                step=step,
                step_attempts=attempts,
                token=token,
                client=client_for(token.value),
                lease_s=lease_s,
                tenant_id=tenant_id,
                batch_id=batch_id,
                input=claim.input,
                options=claim.options,
                checkpoint=claim.checkpoint,
                save_checkpoint=saver_for(job_uuid, claim.lease),
                lease=claim.lease,
            )
            outcome = _execute(function, context)
    latency_ms = int((time.monotonic() - started) * 1000)
    return _record(job_uuid, step, claim.lease, outcome, latency_ms, attempt=attempts)


def crash_limit() -> int:
    """Claims of one step without an outcome before the job is failed. Counted failures end a
    step at `max_step_attempts`, so claims beyond it are tries that never came back; twice the
    limit leaves room for workers killed by their operator (a deploy, a scale-down)."""
    return 2 * get_settings().max_step_attempts


def _crashed(step: JobState, tries: int) -> Fail:
    return Fail(
        "worker_crashed",
        f"The {step.value} step was started {tries} times and its worker died each time before "
        "it finished (a crash or running out of memory). Retry the job; if it happens again, "
        "report it with this job's id.",
    )


def slow_down_after_429(error: errors.RateLimited) -> None:
    """A backend 429 slows every worker a little: the shared limiter pauses two token intervals.

    The job itself waits the whole Retry-After (policy table). Pausing everyone for the whole
    Retry-After would let a trickle of 429s stall all work: each pause ends in a burst that
    meets the next 429.
    """
    if error.http_status is None:
        return  # our own pacing said wait: nothing to tell the limiter
    interval = 2.0 / max(get_settings().nemo_rate_limit_rps, 0.1)
    rate_limiter().push_back(min(error.retry_after or interval, interval))


def _ids(context: StepContext) -> dict[str, str]:
    return log_fields(job_id=context.job_id, batch_id=context.batch_id, step=context.step.value)


def _execute(function: StepFunction, context: StepContext) -> Outcome:
    attempt = Attempt(context.step, context.step_attempts)
    try:
        try:
            outcome = function(context)
        except errors.TokenInvalid:
            if context.token.registered:
                raise
            outcome = _with_fresh_anonymous_token(function, context)
        else:
            if context.checkpoint.get(TOKEN_REFUSED_SINCE):
                context.save(**{TOKEN_REFUSED_SINCE: None})  # the token works again
        return outcome
    except errors.NemoError as error:
        if isinstance(error, errors.RateLimited):
            slow_down_after_429(error)
        log.info("job %s step %s: %s", context.job_id, context.step, error, extra=_ids(context))
        return outcome_for(error, attempt)
    except LeaseLost:
        return _STALE  # canceled, retried or taken over: whatever is recorded is dropped
    except Exception as error:  # a bug or an unexpected answer: never lose the job over it
        log.exception(
            "job %s step %s failed unexpectedly", context.job_id, context.step, extra=_ids(context)
        )
        if context.step_attempts >= get_settings().max_step_attempts:
            return Fail("internal_error", f"The {context.step} step kept failing: {error!r}.")
        return Backoff(
            get_settings().retry_base_delay_s, "internal_error", f"Unexpected error: {error!r}"
        )


TOKEN_REFUSED_SINCE = "token_refused_since"


def _with_fresh_anonymous_token(function: StepFunction, context: StepContext) -> Outcome:
    """Re-acquire the shared anonymous token (single flight: dropped only if it is still the
    refused one) and run the step again. Refused again, the job backs off and tries once more,
    for up to NEMO_TOKEN_REFRESH_MAX_S from the first refusal, not for one retry per step."""
    drop_anonymous_token(context.token.value)
    context.token = shared_anonymous_token()
    context.client = client_for(context.token.value)
    try:
        outcome = function(context)
    except errors.TokenInvalid as again:
        since_text = context.checkpoint.get(TOKEN_REFUSED_SINCE)
        now = utcnow()
        since = datetime.fromisoformat(str(since_text)) if since_text else now
        if not since_text:
            context.save(**{TOKEN_REFUSED_SINCE: now.isoformat()})
        settings = get_settings()
        if (now - since).total_seconds() >= settings.nemo_token_refresh_max_s:
            return outcome_for(again, Attempt(context.step, context.step_attempts))
        delay = random.uniform(0.5, 1.5) * min(settings.retry_base_delay_s, 10.0)
        return Backoff(
            delay,
            "token_refresh",
            "The backend refused the shared anonymous token again right after it was acquired "
            "anew; acquiring another one shortly.",
            http_status=again.http_status,
            backend_code=again.code,
        )
    if context.checkpoint.get(TOKEN_REFUSED_SINCE):
        context.save(**{TOKEN_REFUSED_SINCE: None})
    return outcome


_STALE = Backoff(0.0, "lease_lost", "The job was no longer this worker's.")
"""What a step whose lease was lost ends in: recorded against that lease, so dropped."""


def apply_outcome(
    job_id: uuid.UUID,
    step: JobState,
    outcome: Outcome,
    latency_ms: int,
    *,
    attempt: int = 0,
    lease: uuid.UUID | None = None,
) -> bool:
    """Record what the step asked for under `lease` (None: whoever holds the step); True if
    the job moved on to the next step in order."""
    return _record(job_id, step, lease, outcome, latency_ms, attempt=attempt).advanced


def _record(
    job_id: uuid.UUID,
    step: JobState,
    lease: uuid.UUID | None,
    outcome: Outcome,
    latency_ms: int,
    *,
    attempt: int = 0,
) -> StepReport:
    if _plain_advance(step, outcome):
        assert isinstance(outcome, Advance)
        with autocommit() as connection:  # one statement: its own transaction
            advanced = advance_to_next_step(
                connection,
                job_id,
                step,
                lease,
                _done(outcome, attempt, latency_ms),
                next_in_s=outcome.next_in_s,
            )
        if advanced:
            log.info("job %s: %s -> advance", job_id, step.value)
        # A next step due later is not the chain's: the claimer sends the job on when it is due.
        return StepReport(advanced and outcome.next_in_s is None)
    if _final_advance(step, outcome):
        assert isinstance(outcome, Advance)
        return _finish(job_id, step, lease, outcome, latency_ms, attempt)
    after_commit: list[AfterCommit] = []
    advanced = False
    with session_scope() as session:
        job = leased_job(session, job_id, step, lease)
        if job is None:
            return StepReport(False)  # canceled, retried or taken over while it ran: dropped
        outcome = _throttle(job, outcome)
        advanced = _apply(session, job, step, outcome, latency_ms, after_commit)
        throttled_since = job.throttled_since
        ids = log_fields(job_id=job.id, batch_id=job.batch_id, step=step.value, state=job.state)
    log.info("job %s: %s -> %s", job_id, step.value, type(outcome).__name__.lower(), extra=ids)
    for action in after_commit:
        action()
    return StepReport(advanced, throttled_since)


def _finish(
    job_id: uuid.UUID,
    step: JobState,
    lease: uuid.UUID | None,
    outcome: Advance,
    latency_ms: int,
    attempt: int,
) -> StepReport:
    """The last step done: the job ends in one statement, its batch follows (`finish_step`)."""
    from worker import enqueue  # late: enqueue imports the tasks, which import this module

    with session_scope() as session:
        deliveries = finish_step(
            session,
            job_id,
            step,
            outcome.to or next_step(step),
            lease,
            _done(outcome, attempt, latency_ms),
            grace_s=enqueue.webhook_grace_s(),
        )
    if deliveries is None:
        return StepReport(False)  # canceled, retried or taken over while it ran: dropped
    log.info("job %s: %s -> finished", job_id, step.value)
    for action in enqueue.sends_after_final(deliveries):
        action()
    return StepReport(False)


def _done(outcome: Advance, attempt: int, latency_ms: int) -> StepDone:
    return StepDone(attempt, outcome.checkpoint, outcome.fields, outcome.message, latency_ms)


def _throttle(job: Job, outcome: Outcome) -> Outcome:
    """Keep `throttled_since` while the backend answers 429 (our own pacing changes nothing),
    clear it on any other answer, and fail the job once it has waited NEMO_THROTTLE_MAX_S."""
    if isinstance(outcome, Backoff) and outcome.code == "paced":
        return outcome
    if not (isinstance(outcome, Backoff) and outcome.code == "rate_limited"):
        job.throttled_since = None
        return outcome
    now = utcnow()
    job.throttled_since = job.throttled_since or now
    limit = get_settings().nemo_throttle_max_s
    waited = (now - job.throttled_since).total_seconds()
    if waited < limit:
        return outcome
    job.throttled_since = None
    return Fail(
        "rate_limited",
        f"The backend kept answering HTTP 429 (too many requests) for {waited / 60:.0f} minutes "
        f"(the limit is NEMO_THROTTLE_MAX_S = {limit:.0f} s). Lower NEMO_RATE_LIMIT_RPS or run "
        "fewer jobs at once, then retry the job.",
        http_status=429,
    )


def _final_advance(step: JobState, outcome: Outcome) -> bool:
    """The last step done, ending the job: written without loading it (`finish_step`)."""
    return isinstance(outcome, Advance) and (outcome.to or next_step(step)) in FINAL


def _plain_advance(step: JobState, outcome: Outcome) -> bool:
    """A step done that hands the job to the next running step: the hot path, written
    without loading the job (`advance_to_next_step`)."""
    return isinstance(outcome, Advance) and outcome.to is None and next_step(step) not in FINAL


def _apply(
    session: Session,
    job: Job,
    step: JobState,
    outcome: Outcome,
    latency_ms: int,
    after_commit: list[AfterCommit],
) -> bool:
    from worker import enqueue  # late: enqueue imports the tasks, which import this module

    match outcome:
        case Advance(checkpoint=checkpoint, message=message, to=to, fields=values):
            job.checkpoint = {**job.checkpoint, **checkpoint}
            set_fields(job, values)
            target = to or next_step(step)
            add_event(session, job, "step_done", message, step=step.value, latency_ms=latency_ms)
            transition(session, job, target)  # a final one goes by `_finish`
            if outcome.next_in_s is not None:
                wait(job, outcome.next_in_s)  # due later: the claimer sends it on
                return False
            if to is not None:
                after_commit.append(lambda: enqueue.pipeline_from(job.id, target))
                return False
            return True
        case Wait(delay_s=delay, checkpoint=checkpoint, message=message, fields=values):
            job.checkpoint = {**job.checkpoint, **checkpoint}
            set_fields(job, values)
            wait(job, delay)
            if message:
                add_event(session, job, "wait", message, step=step.value, latency_ms=latency_ms)
            return False
        case Restart(to=to, checkpoint=checkpoint, message=message, clear=clear):
            kept = {k: v for k, v in job.checkpoint.items() if k not in clear}
            job.checkpoint = {**kept, **checkpoint}
            transition(session, job, to, message=message)
            after_commit.append(lambda: enqueue.pipeline_from(job.id, to))
            return False
        case Backoff(delay_s=delay, code=code, message=message):
            add_event(
                session,
                job,
                "retry",
                message,
                step=step.value,
                latency_ms=latency_ms,
                http_status=outcome.http_status,
                backend_code=outcome.backend_code,
                data={"code": code, "delay_s": round(delay, 1)},
            )
            waiting = f"retry in {delay:.0f} s"
            if code == "rate_limited" and job.throttled_since is not None:
                waiting = f"throttled since {job.throttled_since:%Y-%m-%d %H:%M:%S} UTC; {waiting}"
            back_off(session, job, step, delay, waiting, counts=code not in NOT_AN_ATTEMPT)
            return False
        case WaitCredits(message=message, bind_url=bind_url):
            wait_for_credits(session, job, step, message, bind_url)
            tenant = session.get(Tenant, job.tenant_id)
            if tenant is not None:
                pause_tenant(session, tenant, "out_of_credits")
            return False
        case Fail(code=code, message=message):
            add_event(
                session,
                job,
                "error",
                message,
                step=step.value,
                latency_ms=latency_ms,
                http_status=outcome.http_status,
                backend_code=outcome.backend_code,
                data={"code": code},
            )
            transition(session, job, JobState.FAILED, message=message, error_code=code)
            after_commit.extend(enqueue.job_finished(session, job))
            return False
    raise TypeError(f"unknown outcome {outcome!r}")
