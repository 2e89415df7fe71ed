"""A backend token, registered or anonymous, stays a secret through a whole pipeline run: it is
in no worker or beat log, no event row, no job error, no API answer and no task message (task
arguments are job ids, which is also all Flower shows)."""

import base64
import json
import re
import threading
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

from tests.conftest import TEST_REDIS_URL
from tests.support.waiting import wait_for
from tests.worker.helpers import ApiUser, all_final, api_user, batch_jobs, describe
from tests.worker.stack import REGISTERED_TOKEN, Stack, running_stack

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
QUEUES = ("pipeline", "stream", "poll", "webhooks", "schedules", "celery")


def _items(image: str, count: int) -> list[dict[str, Any]]:
    return [
        {"ref": f"s-{n}", "title": f"Secret-safe {n}", "images": [image],
         "options": {"duration_s": 5, "aspect_ratio": "1:1"}}
        for n in range(count)
    ]  # fmt: skip


class QueueWatcher:
    """Reads every message waiting in the broker's queues while the batch runs."""

    def __init__(self) -> None:
        self.bodies: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        while not self.stop.wait(0.05):
            for queue in QUEUES:
                self.bodies += [raw.decode(errors="replace") for raw in client.lrange(queue, 0, -1)]

    def close(self) -> list[str]:
        self.stop.set()
        self.thread.join(timeout=5)
        return self.bodies


def _decoded(message: str) -> tuple[list[Any], str]:
    """A Celery message's positional arguments and its whole body, decoded."""
    envelope = json.loads(message)
    body = envelope["body"]
    if envelope.get("properties", {}).get("body_encoding") == "base64":
        body = base64.b64decode(body).decode(errors="replace")
    args, _kwargs, _embed = json.loads(body)
    return list(args), body


def _run_and_collect(stack: Stack, user: ApiUser) -> tuple[list[str], list[str]]:
    """Run a short batch; the texts the token must not appear in, and the task messages."""
    from core.db import session_scope
    from core.models import JobEvent

    watcher = QueueWatcher()
    try:
        image = user.upload_image("gold")
        batch = user.post("/v1/batches", json={"name": "secrets", "items": _items(image, 3)})
        jobs = wait_for(lambda: all_final(batch["id"]), 180, "every job to finish")
    finally:
        messages = watcher.close()
    assert all(job.state == "succeeded" for job in jobs), describe(jobs)
    texts = [stack.log(name) for name in ("pipeline", "stream", "beat")]
    texts += [p.read_text(errors="replace") for p in Path(stack.logs).glob("*.log")]
    texts += [
        f"{job.error_code} {job.error_message} {job.checkpoint}" for job in batch_jobs(batch["id"])
    ]
    with session_scope() as session:
        events = session.scalars(
            select(JobEvent).where(JobEvent.job_id.in_([job.id for job in jobs]))
        ).all()
        assert events
        texts += [f"{event.message} {json.dumps(event.data, default=str)}" for event in events]
    texts.append(json.dumps(user.get(f"/v1/batches/{batch['id']}")))
    texts.append(json.dumps(user.get(f"/v1/batches/{batch['id']}/jobs")))
    for job in jobs:
        texts.append(json.dumps(user.get(f"/v1/jobs/{job.id}")))
        texts.append(json.dumps(user.get(f"/v1/jobs/{job.id}/events")))
    texts.append(json.dumps(user.get("/v1/credits")))
    return texts, messages


def _assert_secret(token: str, texts: list[str], messages: list[str], logs: str) -> None:
    assert token
    for text in texts + messages:
        assert token not in text
    assert messages, "some task messages were seen in the queues"
    for message in messages:
        args, body = _decoded(message)
        assert token not in body
        assert all(UUID.match(str(arg)) for arg in args), args
    logged_args = re.findall(r'"args": "([^"]*)"', logs)
    assert logged_args, "the workers log the arguments of the tasks they receive"
    for args in set(logged_args):
        assert all(UUID.match(value) for value in re.findall(r"'([^']*)'", args)), args


def test_a_registered_token_appears_in_no_log_event_error_answer_or_task_message(
    tmp_path: Path, settings: object
) -> None:
    with running_stack(tmp_path, registered=True) as stack, api_user() as user:
        texts, messages = _run_and_collect(stack, user)
        logs = "".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log"))
        _assert_secret(REGISTERED_TOKEN, texts, messages, logs)


def test_an_anonymous_token_appears_in_no_log_event_error_answer_or_task_message(
    tmp_path: Path, settings: object
) -> None:
    from worker.tokens import ANON_TOKEN_KEY

    credits = ("--rate-limit-rps", "40", "--rate-limit-burst", "20", "--anon-credits", "100000")
    with (
        running_stack(tmp_path, registered=False, emulator_args=credits) as stack,
        api_user() as user,
    ):
        texts, messages = _run_and_collect(stack, user)
        cached = redis.Redis.from_url(TEST_REDIS_URL).get(ANON_TOKEN_KEY)
        assert cached, "the workers used an anonymous token"
        token = json.loads(cached)["token"]
        logs = "".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log"))
        _assert_secret(token, texts, messages, logs)
