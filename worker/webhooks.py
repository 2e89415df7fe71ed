"""Webhook delivery: sign, send, retry with exponential backoff for up to a day, record each try.

Deliveries are outbox rows written with the job's final state (`worker.notify`). After commit a
`worker.deliver_webhook` message sends one; due retries (and rows whose first message was lost)
are claimed from Postgres by `worker.claim_webhooks` on beat, so losing Redis loses no delivery.

Receivers verify `X-Nemo-Batch-Signature: t=<unix>,v1=<hex>`, the HMAC-SHA256 of `"<t>.<body>"`
with the tenant's webhook secret (`nemo-batch tenant show NAME`); see `verify_signature`.
"""

import hashlib
import hmac
import json
import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpcore
import httpx

from core import broker
from core.db import session_scope
from core.logging import log_fields
from core.models import Tenant
from core.netcheck import PrivateAddress, Unresolvable, pin
from core.repo import deliveries as repo
from core.repo.jobs import utcnow
from core.repo.tenants import signing_secrets
from core.settings import Settings, get_settings
from worker.deadline_http import DeadlinePassed, post_within

log = logging.getLogger("worker.webhooks")

SIGNATURE_HEADER = "X-Nemo-Batch-Signature"
DELIVER_TASK = "worker.deliver_webhook"
WEBHOOK_QUEUE = "webhooks"
CLAIM_BATCH = 200
MAX_ANSWER_BYTES = 4096
"""Of a receiver's answer only the status counts; its start is kept for the error message."""


def sign(secret: str, body: bytes, timestamp: int, *more: str) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds): one `v1`
    per secret (two while a rotated-out secret still signs)."""
    parts = [f"t={timestamp}"]
    for key in (secret, *more):
        digest = hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        parts.append(f"v1={digest.hexdigest()}")
    return ",".join(parts)


def verify_signature(
    secret: str, header: str, body: bytes, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """What a receiver does: recompute the HMAC of `t.body`, compare in constant time, and
    refuse timestamps older than `tolerance_s` (replays)."""
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    try:
        timestamp = int(fields["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1", []))


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes sent and signed."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def retry_delay(attempts: int, base_s: float, cap_s: float) -> float:
    """Wait after the `attempts`-th failed try: base, 2 base, 4 base, ... capped."""
    return float(min(base_s * 2 ** max(0, attempts - 1), cap_s))


def retry_schedule(base_s: float, cap_s: float, max_age_s: float) -> list[float]:
    """Seconds after the first try at which each retry happens, all within `max_age_s`."""
    offsets: list[float] = []
    elapsed = 0.0
    while True:
        elapsed += retry_delay(len(offsets) + 1, base_s, cap_s)
        if elapsed > max_age_s:
            return offsets
        offsets.append(elapsed)


def next_retry_at(
    created_at: datetime, attempts: int, now: datetime, settings: Settings
) -> datetime | None:
    """When to try again after `attempts` failed tries, or None once the day is over."""
    delay = retry_delay(attempts, settings.webhook_retry_base_s, settings.webhook_retry_max_delay_s)
    delay *= random.uniform(1.0, 1.1)  # receivers coming back are not hit all at once
    retry_at = now + timedelta(seconds=delay)
    if retry_at - created_at > timedelta(seconds=settings.webhook_max_age_s):
        return None
    return retry_at


def attempt_lease_s(settings: Settings) -> float:
    """How long one try may hold a delivery before the claimer may start another: above the
    task's hard time limit (`worker.celery_app`), so two tries never overlap."""
    return 2 * settings.webhook_timeout_s + 30


@dataclass(frozen=True)
class SendResult:
    status_code: int | None
    error: str | None
    final: bool = False
    """No retry can help (the receiver's address is refused)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def send(url: str, body: bytes, headers: dict[str, str], settings: Settings) -> SendResult:
    """POST `body` to `url`, connecting only to an address checked after DNS resolution."""
    try:
        pinned = pin(httpx.URL(url), allow_private=settings.allow_private_urls)
    except PrivateAddress as error:
        return SendResult(None, f"refused: {error}", final=True)
    except Unresolvable as error:
        return SendResult(None, str(error))
    try:
        answer = post_within(
            str(pinned.url),
            body,
            {**headers, **pinned.headers},
            deadline_s=settings.webhook_timeout_s,
            max_answer_bytes=MAX_ANSWER_BYTES,
            sni_hostname=pinned.sni_hostname,
        )
    except DeadlinePassed:
        return SendResult(None, f"no answer within {settings.webhook_timeout_s:g} s")
    except (
        httpcore.NetworkError,
        httpcore.ProtocolError,
        httpcore.TimeoutException,
        httpcore.UnsupportedProtocol,
        OSError,
    ) as error:
        return SendResult(None, f"could not reach the receiver: {error!r}")
    if 200 <= answer.status < 300:
        return SendResult(answer.status, None)
    excerpt = answer.head[:200].decode("utf-8", "replace").strip()
    return SendResult(
        answer.status,
        f"the receiver answered HTTP {answer.status}" + (f": {excerpt}" if excerpt else ""),
    )


def deliver(delivery_id: str | uuid.UUID, attempts_before: int) -> bool:
    """Make try number `attempts_before + 1` of a delivery; True when it was delivered."""
    settings = get_settings()
    key = uuid.UUID(str(delivery_id))
    with session_scope() as session:
        delivery = repo.begin_attempt(session, key, attempts_before, attempt_lease_s(settings))
        if delivery is None:
            return False  # delivered, given up, or this try is someone else's
        tenant = session.get(Tenant, delivery.tenant_id)
        keys = signing_secrets(tenant) if tenant is not None else [""]
        url, payload, event = delivery.url, dict(delivery.payload), delivery.event
        attempts, created_at = delivery.attempts, delivery.created_at
        ids = log_fields(delivery_id=key, batch_id=delivery.batch_id, job_id=delivery.job_id)
    body = encode_body(payload)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "nemo-batch-webhooks/1",
        "X-Nemo-Batch-Event": event,
        "X-Nemo-Batch-Delivery": str(key),
        SIGNATURE_HEADER: sign(keys[0], body, int(time.time()), *keys[1:]),
    }
    result = send(url, body, headers, settings)
    with session_scope() as session:
        if result.ok:
            assert result.status_code is not None
            repo.record_success(session, key, result.status_code)
            log.info("webhook %s delivered (try %d)", event, attempts, extra=ids)
            return True
        retry_at = None if result.final else next_retry_at(created_at, attempts, utcnow(), settings)
        repo.record_failure(
            session, key, status_code=result.status_code, error=str(result.error), retry_at=retry_at
        )
    if retry_at is None:
        log.warning(
            "webhook %s gave up after %d tries: %s", event, attempts, result.error, extra=ids
        )
    else:
        log.info("webhook %s try %d failed: %s", event, attempts, result.error, extra=ids)
    return False


def send_delivery(delivery_id: uuid.UUID, attempts_before: int) -> None:
    """Publish the message for one try; if it is lost, the claimer sends the row again."""
    arguments = {"delivery_id": str(delivery_id), "attempts_before": attempts_before}
    broker.send_task(DELIVER_TASK, arguments, queue=WEBHOOK_QUEUE)


def claim_due() -> int:
    """Send every delivery whose retry (or lost first try) is due; SKIP LOCKED claim."""
    settings = get_settings()
    with session_scope() as session:
        due = repo.claim_due(session, CLAIM_BATCH, attempt_lease_s(settings))
    for delivery_id, attempts in due:
        send_delivery(delivery_id, attempts)
    return len(due)
