"""End to end: the backend's error codes of DESIGN.md's policy table, through real Celery workers.

402 (plan tier), 4001 (unsupported media) and 4002 (too large) fail the job with a message a
user can act on; 1002 (session lost) and 1001 (token expired) are recovered from and the jobs
still succeed. Each is checked on the job and on the emulator's own counts.
"""

import http.server
import io
import os
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import select

from core.db import session_scope
from core.models import Job, JobEvent
from tests.support.waiting import wait_for
from tests.worker.helpers import ApiUser, all_final, api_user, batch_jobs, describe
from tests.worker.stack import Stack, running_stack

RATE = ("--rate-limit-rps", "40", "--rate-limit-burst", "20")
ANON_TOKEN = "POST /api/auth/anonymous-token"
CREATE_SESSION = "POST /api/tasks/{user}/with-session/nemo_agent"
UPLOAD = "POST /api/upload-video/nemo_agent/{user}/{session_id}"
RUN_SSE = "POST /run_sse"
POST_RENDER = "POST /api/render/proxy/lambda"


def calls(stack: Stack, route: str) -> dict[str, int]:
    """The emulator's answers on a route template: {"200": n, "200:4001": n, "402": n, ...}."""
    answers: dict[str, int] = stack.emulator.stats()["requests"].get(route, {})
    return answers


def total(stack: Stack, route: str) -> int:
    return sum(calls(stack, route).values())


def item(n: int, images: list[str]) -> dict[str, Any]:
    return {
        "ref": f"sku-{n}",
        "title": f"Trail bottle {n}",
        "description": "Keeps water cold for a day. Light and tough.",
        "images": images,
        "options": {"aspect_ratio": "1:1", "duration_s": 5},
    }


def submit(user: ApiUser, items: list[dict[str, Any]]) -> str:
    return str(user.post("/v1/batches", json={"name": "errors", "items": items})["id"])


def finished(batch_id: str, timeout_s: float = 60) -> list[Job]:
    try:
        jobs: list[Job] = wait_for(lambda: all_final(batch_id), timeout_s, "every job to finish")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{describe(batch_jobs(batch_id))}") from None
    return jobs


def events(job_id: uuid.UUID) -> list[JobEvent]:
    with session_scope() as session:
        return list(
            session.scalars(select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id))
        )


def slow_replies(stack: Stack, seconds: float) -> None:
    """Each agent turn takes `seconds` (the stack's emulator runs at time scale 0.01)."""
    scale = float(stack.emulator.control("config", {})["time_scale"])
    stack.emulator.control("config", {"reply_delay_s": [seconds / scale, seconds / scale]})


def test_export_blocked_by_plan_tier_fails_without_a_render(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack, api_user() as user:
        stack.emulator.control("config", {"export_blocked_rate": 1.0})
        image = user.upload_image("red")
        batch_id = submit(user, [item(n, [image]) for n in range(2)])

        jobs = finished(batch_id)

        for job in jobs:
            assert job.state == "failed", describe(jobs)
            assert job.error_code == "export_blocked"
            message = job.error_message or ""
            assert "plan" in message and "not credits" in message
            assert "What to do" not in message  # the user's advice, once
            assert job.checkpoint.get("output_url") is None
        stats = stack.emulator.stats()
        assert stats["renders"]["posted"] == 0
        assert calls(stack, POST_RENDER) == {"402": len(jobs)}  # refused once each, not retried
        assert user.get(f"/v1/batches/{batch_id}")["status"] == "failed"


@contextmanager
def serving(body: bytes, content_type: str) -> Iterator[str]:
    """A loopback HTTP server answering every GET with `body`; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_unsupported_media_from_a_url_fails_the_job_before_the_backend_sees_it(
    tmp_path: Path,
) -> None:
    settings = {"ALLOW_PRIVATE_URLS": "true"}
    text = b"This is a shopping list, not a photo.\nmilk\nbread\n" * 20
    with (
        serving(text, "image/jpeg") as base,
        running_stack(tmp_path, settings=settings) as stack,
        api_user() as user,
    ):
        good = user.upload_image("green")
        batch_id = submit(user, [item(0, [f"{base}/photo.jpg"]), item(1, [good])])

        bad_job, good_job = finished(batch_id)

        assert bad_job.state == "failed", describe([bad_job])
        assert bad_job.error_code == "unsupported_media"
        message = bad_job.error_message or ""
        assert f"{base}/photo.jpg" in message and "not a file the backend takes" in message
        assert "accepted formats: mp4, mov" in message
        assert "session_id" not in bad_job.checkpoint, "kept from the backend altogether"
        assert good_job.state == "succeeded", describe([good_job])
        assert calls(stack, UPLOAD).get("200:4001") is None
        assert stack.emulator.stats()["renders"]["posted"] == 1  # the good job's only


def noise_png(side: int) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buffer, "PNG")
    return buffer.getvalue()


def test_media_above_the_backend_limit_fails_the_job(tmp_path: Path) -> None:
    emulator_args = (*RATE, "--max-upload-mb", "0.1")  # 100 KB
    with running_stack(tmp_path, emulator_args=emulator_args) as stack, api_user() as user:
        big = noise_png(300)
        assert len(big) > 150_000
        files = {"file": ("big.png", big, "image/png")}
        large = str(user.post("/v1/assets", files=files)["id"])
        small = user.upload_image("blue")
        batch_id = submit(user, [item(0, [small, large]), item(1, [small])])

        large_job, small_job = finished(batch_id)

        assert large_job.state == "failed", describe([large_job])
        assert large_job.error_code == "media_too_large"
        message = large_job.error_message or ""
        assert "too large" in message.lower() and "Trim or compress" in message
        assert "What to do" not in message
        assert small_job.state == "succeeded", describe([small_job])
        assert calls(stack, UPLOAD).get("200:4002") == 1
        assert stack.emulator.stats()["renders"]["posted"] == 1


def test_session_lost_mid_job_restarts_in_a_new_session_and_succeeds(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack, api_user() as user:
        slow_replies(stack, 2.0)
        image = user.upload_image("red")
        batch_id = submit(user, [item(n, [image]) for n in range(2)])

        def prompting() -> Job | None:
            job = batch_jobs(batch_id)[0]
            return job if job.state == "prompt" and job.checkpoint.get("session_id") else None

        lost_id = str(wait_for(prompting, 30, "job 0 to be in its prompt").checkpoint["session_id"])
        assert stack.emulator.control(f"lose-session/{lost_id}")["lost"] is True

        lost_job, other_job = finished(batch_id)

        assert lost_job.state == "succeeded", describe([lost_job])
        assert other_job.state == "succeeded", describe([other_job])
        assert lost_job.checkpoint["session_id"] != lost_id
        trail = events(lost_job.id)
        assert any("lost the session" in (e.message or "") for e in trail), describe([lost_job])
        opened = [e for e in trail if e.kind == "step_done" and e.step == "session"]
        assert len(opened) == 2
        assert total(stack, CREATE_SESSION) == 3  # two for the lost job, one for the other
        assert stack.emulator.stats()["renders"]["completed"] == 2


def test_expired_anonymous_token_is_acquired_again_once_for_all_workers(tmp_path: Path) -> None:
    emulator_args = (*RATE, "--anon-credits", "100000")
    with (
        running_stack(tmp_path, registered=False, emulator_args=emulator_args) as stack,
        api_user() as user,
    ):
        slow_replies(stack, 2.0)
        image = user.upload_image("green")
        batch_id = submit(user, [item(n, [image]) for n in range(4)])

        def all_in_sessions() -> bool:
            jobs = batch_jobs(batch_id)
            return all(job.checkpoint.get("session_id") for job in jobs)

        wait_for(all_in_sessions, 30, "every job to have a session")
        assert total(stack, ANON_TOKEN) == 1
        assert stack.emulator.control("expire-tokens")["expired"] == 1

        jobs = finished(batch_id)

        assert all(job.state == "succeeded" for job in jobs), describe(jobs)
        assert total(stack, ANON_TOKEN) == 2, calls(stack, ANON_TOKEN)
        refused = sum(
            n
            for route in stack.emulator.stats()["requests"].values()
            for key, n in route.items()
            if key.endswith(":1001") or key == "401"
        )
        assert refused >= 2, "several jobs met the expired token, yet it was re-acquired once"
        assert stack.emulator.stats()["renders"]["completed"] == len(jobs)
