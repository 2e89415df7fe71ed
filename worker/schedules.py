"""Scheduled runs: beat claims each due schedule once, and a run makes a batch of only the
products that are new or changed since their last succeeded video (all of them with `force`).

A product is known across runs by its `ref` (its title when it has none). Its fingerprint is a
sha256 over its text, options, rendered messages and the bytes of its media, so a re-uploaded
image behind the same URL counts as a change. Whatever goes wrong is stored on the schedule in
words (`last_error`) and what a run did in `last_outcome`.
"""

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from core import broker
from core.batch_input import BatchIn
from core.db import session_scope
from core.errors import InputError, loc_path
from core.intake import Locate, build_batch, request_hash, validate_body
from core.models import Batch, Schedule, Tenant
from core.repo import schedules as repo
from core.repo.batches import insert_batch
from core.repo.jobs import utcnow
from core.schedules import ScheduleError, identify_products, local_time, next_run
from core.settings import Settings, get_settings
from worker.feeds import FetchError, fetch_feed, hash_urls, parse_feed

log = logging.getLogger("worker.schedules")

MAX_RUNS_PER_CALL = 100
RUN_LEASE = timedelta(minutes=30)
"""How long a claimed firing waits for its run to record an outcome before it is due again: a
worker that dies mid-run delays that firing, it does not lose it. Longer than any run (a feed
read within FEED_TIMEOUT_S, its media hashed, one batch stored)."""
MEDIA_FIELDS = ("images", "clips")
SHOWN_PROBLEMS = 5


class RunError(Exception):
    """A run that cannot make a batch; the message is stored as the schedule's `last_error`."""


@dataclass
class Products:
    """A run's validated products with their identities and fingerprints."""

    spec: BatchIn
    locate: Locate
    fingerprints: list[str | None]
    problems: list[str]


def fire_due(settings: Settings | None = None) -> int:
    """Claim due schedules one at a time and run each; returns how many ran.

    Claiming advances `next_run_at` in the claiming transaction, so two beats (or two workers)
    calling this at once never run the same firing twice.
    """
    settings = settings or get_settings()
    fired = 0
    while fired < MAX_RUNS_PER_CALL:
        schedule_id = claim_next(utcnow())
        if schedule_id is None:
            break
        run_schedule(schedule_id, settings)
        fired += 1
    return fired


def claim_next(now: datetime) -> uuid.UUID | None:
    """Take one due schedule and move its `next_run_at` on, in one transaction.

    Until the run records its outcome, `next_run_at` is at most one `RUN_LEASE` ahead (the
    regular next time when that is sooner): if the worker dies mid-run, the firing is claimed
    again then. The outcome sets the regular next time (`_set_outcome`).
    """
    with session_scope() as session:
        schedule = repo.claim_due(session, now)
        if schedule is None:
            return None
        upcoming = _upcoming(schedule, now)
        schedule.next_run_at = min(upcoming, now + RUN_LEASE) if upcoming else now + RUN_LEASE
        schedule.running_until = now + RUN_LEASE
        return schedule.id


def _upcoming(schedule: Schedule, now: datetime) -> datetime | None:
    """The schedule's next regular time after `now`; None when paused or its cron is invalid
    (which is then said in `last_error`)."""
    if not schedule.enabled:
        return None
    try:
        return next_run(schedule.cron, schedule.timezone, now)
    except ScheduleError as error:
        schedule.last_error = f"{error}; fix the cron expression to run it again"
        return None


def run_schedule(schedule_id: uuid.UUID, settings: Settings | None = None) -> uuid.UUID | None:
    """Make the run's batch; its id, or None when there was nothing to do or it failed."""
    settings = settings or get_settings()
    started = utcnow()
    try:
        return _run(schedule_id, settings, started)
    except (RunError, FetchError, InputError) as error:
        _record(schedule_id, started, error=str(error), outcome="no batch: the run failed")
    except Exception:
        log.exception("schedule %s: the run failed", schedule_id)
        _record(
            schedule_id,
            started,
            error="the run failed on an internal error (logged); it is tried again at the next "
            "run time, or now with `nemo-batch schedule run`",
            outcome="no batch: the run failed",
        )
    return None


def _run(schedule_id: uuid.UUID, settings: Settings, started: datetime) -> uuid.UUID | None:
    with session_scope() as session:
        schedule = session.get(Schedule, schedule_id)
        if schedule is None:
            return None
        products = _products(session, schedule, settings)
    problems = _note(products.problems)
    with session_scope() as session:
        schedule = repo.lock_schedule(session, schedule_id)
        if schedule is None:
            return None
        chosen = _changed(session, schedule, products)
        total = len(products.spec.items)
        if not chosen:
            _set_outcome(
                schedule,
                started,
                error=problems,
                outcome=f"nothing new or changed among {total} products since their last "
                "videos; no batch made",
            )
            return None
        batch = _store_batch(session, schedule, settings, products, chosen, started)
        which = "all" if schedule.force else "new or changed"
        _set_outcome(
            schedule,
            started,
            error=problems,
            outcome=f"batch {batch.id}: {len(chosen)} of {total} products ({which})",
            batch_id=batch.id,
        )
        batch_id, tenant_id = batch.id, schedule.tenant_id
    broker.send_dispatch(
        "schedule_run", settings.redis_url, batch_id=str(batch_id), tenant_id=str(tenant_id)
    )
    return batch_id


def _products(session: Session, schedule: Schedule, settings: Settings) -> Products:
    """Read the source, validate it as a batch would be, and fingerprint every product."""
    if schedule.source_url:
        where = f"the feed {schedule.source_url}"
        try:
            raw, content_type = fetch_feed(schedule.source_url, settings)
            items, locate = parse_feed(raw, content_type)
        except FetchError as error:
            raise RunError(f"the feed could not be fetched: {error}") from None
        except InputError as error:
            raise RunError(f"{where} could not be read: {error.message}") from None
    elif schedule.items:
        where, items, locate = "the schedule's items", list(schedule.items), loc_path
    else:
        raise RunError("the schedule has neither a feed URL nor items; set one with PATCH")
    body = {
        "priority": schedule.priority,
        "options": schedule.options,
        "items": items,
        **({"prompt_template": schedule.prompt_template} if schedule.prompt_template else {}),
        **({"webhook_url": schedule.webhook_url} if schedule.webhook_url else {}),
    }
    tenant = session.get(Tenant, schedule.tenant_id)
    if tenant is None:
        raise RunError("the schedule's tenant no longer exists")
    try:
        spec = identify_products(validate_body(body, locate, settings), locate)
        _, rows = build_batch(
            session, tenant, settings, spec, locate, idempotency_key=None, request_digest=""
        )
    except InputError as error:
        raise RunError(f"{where} has invalid products: {error.message}") from None
    hashes = hash_urls(
        (media["url"] for row in rows for media in _media(row["input"]) if "url" in media),
        settings,
    )
    fingerprints: list[str | None] = []
    problems: list[str] = []
    for index, row in enumerate(rows):
        failed = [hashes[m["url"]] for m in _media(row["input"]) if "url" in m]
        errors = [str(result) for result in failed if isinstance(result, FetchError)]
        if errors:
            problems.append(f"{locate(('items', index))} ({spec.items[index].ref}): {errors[0]}")
            fingerprints.append(None)
            continue
        fingerprints.append(fingerprint(row["input"], hashes))
    return Products(spec, locate, fingerprints, problems)


def _media(job_input: dict[str, Any]) -> list[dict[str, Any]]:
    music = job_input.get("music")
    media = [m for field in MEDIA_FIELDS for m in job_input.get(field) or []]
    return [*media, music] if music else media


def fingerprint(job_input: dict[str, Any], hashes: dict[str, Any]) -> str:
    """sha256 over a product's text, options and messages, and its media by content."""

    def content(media: dict[str, Any]) -> str:
        return str(media["sha256"] if "sha256" in media else hashes[media["url"]])

    material = {
        key: value for key, value in job_input.items() if key not in {"music", *MEDIA_FIELDS}
    }
    for field in MEDIA_FIELDS:
        material[field] = [content(media) for media in job_input.get(field) or []]
    music = job_input.get("music")
    material["music"] = content(music) if music else None
    raw = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()


def _changed(session: Session, schedule: Schedule, products: Products) -> list[int]:
    """Indexes of the products to make videos of: every one with `force`; else those whose
    fingerprint differs from their last succeeded video's and is not already on its way."""
    succeeded = repo.succeeded_fingerprints(session, schedule.id)
    inflight = repo.inflight_fingerprints(session, schedule.id)
    chosen = []
    for index, (item, fp) in enumerate(
        zip(products.spec.items, products.fingerprints, strict=True)
    ):
        if fp is None or item.ref is None:
            continue
        if schedule.force or (fp != succeeded.get(item.ref) and (item.ref, fp) not in inflight):
            chosen.append(index)
    return chosen


def _store_batch(
    session: Session,
    schedule: Schedule,
    settings: Settings,
    products: Products,
    chosen: list[int],
    started: datetime,
) -> Batch:
    """The batch of the chosen products, stored with the same intake as `POST /v1/batches`."""
    tenant = session.get(Tenant, schedule.tenant_id)
    assert tenant is not None  # the schedule row (locked) cascades from its tenant
    spec = products.spec.model_copy(update={"items": [products.spec.items[i] for i in chosen]})
    digest = request_hash("schedule", f"{schedule.id}:{started.isoformat()}".encode())
    batch, rows = build_batch(
        session,
        tenant,
        settings,
        spec,
        products.locate,
        idempotency_key=None,
        request_digest=digest,
    )
    for row, index in zip(rows, chosen, strict=True):
        row["product_fingerprint"] = products.fingerprints[index]
    when = local_time(started, schedule.timezone)
    batch.schedule_id = schedule.id
    batch.name = f"{schedule.name[:160]}, {when:%Y-%m-%d %H:%M %Z}"
    insert_batch(session, batch, rows)
    return batch


def _note(problems: list[str]) -> str | None:
    if not problems:
        return None
    shown = "; ".join(problems[:SHOWN_PROBLEMS])
    more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
    return (
        f"{len(problems)} product(s) skipped because a media file could not be read: "
        f"{shown}{more}. They are tried again at the next run."
    )


def _set_outcome(
    schedule: Schedule,
    started: datetime,
    *,
    error: str | None,
    outcome: str,
    batch_id: uuid.UUID | None = None,
) -> None:
    schedule.last_run_at = started
    schedule.last_error = error
    schedule.last_outcome = outcome
    if batch_id is not None:
        schedule.last_batch_id = batch_id
    # The run is over: from its claim's lease back to the regular next time (see claim_next).
    schedule.next_run_at = _upcoming(schedule, started)
    schedule.running_until = None


def _record(schedule_id: uuid.UUID, started: datetime, *, error: str, outcome: str) -> None:
    """Store a failed run's reason on the schedule (it may have been deleted meanwhile)."""
    log.warning("schedule %s: %s", schedule_id, error)
    with session_scope() as session:
        schedule = repo.lock_schedule(session, schedule_id)
        if schedule is not None:
            _set_outcome(schedule, started, error=error[:4000], outcome=outcome)
