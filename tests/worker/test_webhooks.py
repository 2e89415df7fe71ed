"""Webhooks: signed, retried with backoff for a day, refused for private receivers, delivered
end to end from a real pipeline run to a real HTTP receiver, and listed per batch."""

import base64
import http.server
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import wait_for
from tests.worker.helpers import api_user, describe
from tests.worker.stack import running_stack

SECRET = "whsec_test_secret"


def test_signature_is_the_hmac_of_timestamp_dot_body_and_verifies() -> None:
    import hashlib
    import hmac

    from worker.webhooks import sign, verify_signature

    body = b'{"event":"job.succeeded"}'
    header = sign(SECRET, body, 1_700_000_000)

    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature(SECRET, header, body, now=1_700_000_010)


def test_a_changed_body_another_secret_or_an_old_timestamp_does_not_verify() -> None:
    from worker.webhooks import sign, verify_signature

    body = b'{"event":"job.failed"}'
    header = sign(SECRET, body, 1_700_000_000)

    assert not verify_signature(SECRET, header, body + b" ", now=1_700_000_000)
    assert not verify_signature("whsec_other", header, body, now=1_700_000_000)
    assert not verify_signature(SECRET, header, body, now=1_700_000_000 + 3600)
    assert not verify_signature(SECRET, "v1=deadbeef", body)


def test_backoff_doubles_up_to_its_cap_and_stops_after_24_hours(settings: Any) -> None:
    from core.repo.jobs import utcnow
    from worker.webhooks import next_retry_at, retry_delay, retry_schedule

    day = 24 * 3600
    assert [retry_delay(n, 30, 4 * 3600) for n in (1, 2, 3, 4)] == [30, 60, 120, 240]
    assert retry_delay(20, 30, 4 * 3600) == 4 * 3600

    schedule = retry_schedule(30, 4 * 3600, day)
    assert schedule[:3] == [30, 90, 210]
    assert schedule[-1] <= day < schedule[-1] + 4 * 3600
    assert schedule[-1] > 20 * 3600  # retries go on for most of the day, not a few minutes

    created = utcnow()
    assert next_retry_at(created, 1, created, settings) is not None
    almost_a_day_later = created + timedelta(seconds=day - 60)
    assert next_retry_at(created, len(schedule) + 1, almost_a_day_later, settings) is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://10.1.2.3/hook",
        "http://2130706433/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_private_and_loopback_receivers_are_refused_at_intake(settings: Any, url: str) -> None:
    with api_user() as user:
        body = {"webhook_url": url, "items": [{"title": "Blue mug"}]}
        answer = user.client.post("/v1/batches", headers=user.headers, json=body)

    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["details"][0]["loc"] == "webhook_url"
    assert "private" in error["details"][0]["message"]


def test_a_name_resolving_to_loopback_is_refused_at_delivery_with_a_clear_error(
    settings: Any,
) -> None:
    from core.db import session_scope
    from core.models import Batch, WebhookDelivery
    from core.repo.deliveries import add_delivery
    from core.repo.tenants import get_or_create_tenant
    from worker.webhooks import deliver

    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        batch = Batch(tenant_id=tenant.id, name="b", prompt_template="{title}", item_count=0)
        session.add(batch)
        session.flush()
        delivery = add_delivery(
            session,
            tenant_id=tenant.id,
            batch_id=batch.id,
            job_id=None,
            event="batch.completed",
            url="http://localhost:9/hook",  # a name: it passes intake, it resolves to 127.0.0.1
            data={"batch_id": str(batch.id)},
            grace_s=60,
        )
        delivery_id = delivery.id

    assert deliver(delivery_id, 0) is False

    with session_scope() as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        assert row.status == "failed"
        assert row.attempts == 1
        assert row.last_error is not None
        assert "private" in row.last_error and "127.0.0.1" in row.last_error
        assert row.next_attempt_at is None
    assert deliver(delivery_id, 0) is False  # a duplicate message does nothing


def test_a_delivery_whose_message_was_lost_is_claimed_from_postgres_once(settings: Any) -> None:
    from core.db import session_scope
    from core.models import Batch
    from core.repo.deliveries import add_delivery
    from core.repo.tenants import get_or_create_tenant
    from worker.webhooks import claim_due

    with session_scope() as session:
        tenant = get_or_create_tenant(session, f"shop-{uuid.uuid4().hex[:8]}")
        batch = Batch(tenant_id=tenant.id, name="b", prompt_template="{title}", item_count=0)
        session.add(batch)
        session.flush()
        delivery = add_delivery(
            session,
            tenant_id=tenant.id,
            batch_id=batch.id,
            job_id=None,
            event="batch.completed",
            url="https://example.com/hook",
            data={},
            grace_s=0,  # due at once: as if the message sent after commit was lost
        )
        delivery_id = str(delivery.id)

    import redis

    from core.settings import get_settings

    queue = redis.Redis.from_url(get_settings().redis_url)
    queue.delete("webhooks")

    def messages_for_this_delivery() -> int:
        # Other tests' deliveries may fall due in the same database: count only this one's.
        bodies = [json.loads(raw) for raw in queue.lrange("webhooks", 0, -1)]
        kwargs = [json.loads(base64.b64decode(body["body"]))[1] for body in bodies]
        return sum(1 for arguments in kwargs if arguments.get("delivery_id") == delivery_id)

    # Other tests' deliveries that fell due earlier are claimed first, a batch at a time.
    while messages_for_this_delivery() == 0:
        assert claim_due() >= 1, "the delivery was never claimed"
    assert messages_for_this_delivery() == 1
    claim_due()
    assert messages_for_this_delivery() == 1  # leased: a second claimer does not send it again


@dataclass
class Receiver:
    """A loopback webhook receiver; answers 500 to its first `fail_first` POSTs."""

    url: str
    fail_first: int
    calls: list[dict[str, Any]] = field(default_factory=list)

    def delivered(self) -> list[dict[str, Any]]:
        return [call for call in self.calls if call["answered"] == 200]


NOT_AN_IMAGE = b"This is a shopping list, not a photo.\nmilk\nbread\n" * 20


@contextmanager
def receiver(fail_first: int) -> Iterator[Receiver]:
    lock = threading.Lock()
    state: dict[str, Receiver] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the failing job's "photo"
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(NOT_AN_IMAGE)))
            self.end_headers()
            self.wfile.write(NOT_AN_IMAGE)

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                hub = state["receiver"]
                status = 500 if len(hub.calls) < hub.fail_first else 200
                hub.calls.append({"headers": dict(self.headers), "body": body, "answered": status})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}", fail_first)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["receiver"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_job_and_batch_events_reach_a_real_receiver_signed_and_retried_after_a_500(
    tmp_path: Path, settings: Any
) -> None:
    from core.db import session_scope
    from core.models import Tenant
    from tests.worker.helpers import batch_jobs
    from worker.webhooks import SIGNATURE_HEADER, verify_signature

    stack_settings = {"ALLOW_PRIVATE_URLS": "true", "WEBHOOK_RETRY_BASE_S": "0.5"}
    with (
        receiver(fail_first=1) as hook,
        running_stack(tmp_path, settings=stack_settings),
        api_user() as user,
        api_user() as stranger,
    ):
        image = user.upload_image("green")
        items = [
            {"ref": "good", "title": "Green mug", "images": [image]},
            {"ref": "bad", "title": "List", "images": [f"{hook.url}/photo.jpg"]},
        ]
        body = {"webhook_url": f"{hook.url}/hook", "items": items}
        batch_id = user.post("/v1/batches", json=body)["id"]

        def three_events_delivered() -> set[str] | None:
            events = {json.loads(call["body"])["event"] for call in hook.delivered()}
            return events if len(events) == 3 else None

        wait_for(three_events_delivered, 180, "job and batch webhooks to be delivered")
        good, bad = batch_jobs(batch_id)
        assert (good.state, bad.state) == ("succeeded", "failed"), describe([good, bad])

        with session_scope() as session:
            tenant = session.get(Tenant, user.tenant_id)
            assert tenant is not None
            secret = tenant.webhook_secret
        payloads: dict[str, dict[str, Any]] = {}
        for call in hook.calls:
            headers = {name.lower(): value for name, value in call["headers"].items()}
            assert verify_signature(secret, headers[SIGNATURE_HEADER.lower()], call["body"])
            payload = json.loads(call["body"])
            assert headers["x-nemo-batch-event"] == payload["event"]
            payloads[payload["event"]] = payload

        succeeded = payloads["job.succeeded"]["data"]
        assert succeeded["job_id"] == str(good.id) and succeeded["ref"] == "good"
        assert succeeded["output"]["video_url"] == f"/v1/jobs/{good.id}/video"
        assert succeeded["output"]["poster_url"] == f"/v1/jobs/{good.id}/poster"
        assert succeeded["output"]["duration"] > 0
        failed = payloads["job.failed"]["data"]
        assert failed["error"]["code"] == "unsupported_media" and failed["output"] is None
        completed = payloads["batch.completed"]["data"]
        assert completed["status"] == "completed_with_failures"
        assert completed["counts"] == {"succeeded": 1, "failed": 1}

        first_try = json.loads(hook.calls[0]["body"])["id"]
        assert hook.calls[0]["answered"] == 500
        assert first_try in {json.loads(call["body"])["id"] for call in hook.delivered()}

        listing = user.get(f"/v1/batches/{batch_id}/deliveries")
        rows = {row["id"]: row for row in listing["items"]}
        assert {row["event"] for row in rows.values()} == set(payloads)
        assert all(row["status"] == "delivered" for row in rows.values()), rows
        assert rows[first_try]["attempts"] == 2
        assert rows[first_try]["last_status_code"] == 200
        assert sum(row["attempts"] for row in rows.values()) == len(hook.calls) == 4
        assert secret not in json.dumps(listing)
        other = stranger.client.get(f"/v1/batches/{batch_id}/deliveries", headers=stranger.headers)
        assert other.status_code == 404


def test_a_batch_ended_by_cancels_through_the_api_sends_batch_completed(
    tmp_path: Path, settings: Any
) -> None:
    from core.db import session_scope
    from core.models import Tenant

    with (
        receiver(fail_first=0) as hook,
        running_stack(tmp_path, settings={"ALLOW_PRIVATE_URLS": "true"}),
        api_user() as user,
    ):
        with session_scope() as session:  # nothing is admitted: every job stays queued
            tenant = session.get(Tenant, user.tenant_id)
            assert tenant is not None
            tenant.paused_reason = "held by the test"
        image = user.upload_image("olive")
        items = [{"ref": ref, "title": "Olive mug", "images": [image]} for ref in ("a", "b")]
        body = {"webhook_url": f"{hook.url}/hook", "items": items}
        by_jobs = user.post("/v1/batches", json=body)["id"]
        whole = user.post("/v1/batches", json=body)["id"]

        first, second = user.get(f"/v1/batches/{by_jobs}/jobs")["items"]
        user.post(f"/v1/jobs/{first['id']}/cancel")  # one job left: the batch goes on
        user.post(f"/v1/jobs/{second['id']}/cancel")
        user.post(f"/v1/batches/{whole}/cancel")

        def completions() -> dict[str, dict[str, Any]] | None:
            payloads = [json.loads(call["body"]) for call in hook.delivered()]
            done = {p["data"]["batch_id"]: p["data"] for p in payloads}
            return done if len(done) == 2 else None

        done = wait_for(completions, 60, "batch.completed for both canceled batches")
        events = [json.loads(call["body"])["event"] for call in hook.delivered()]
        assert events == ["batch.completed", "batch.completed"]
        for batch_id in (by_jobs, whole):
            assert done[batch_id]["status"] == "canceled"
            assert done[batch_id]["counts"] == {"canceled": 2}
