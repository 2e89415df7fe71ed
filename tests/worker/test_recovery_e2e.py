"""Nothing is lost and nothing is paid for twice: workers killed with SIGKILL mid-stream and
mid-poll, Redis flushed mid-batch, credits running out, and the hostile profile."""

import os
import signal
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import select

from tests.conftest import TEST_REDIS_URL
from tests.support.waiting import wait_for
from tests.worker.helpers import all_final, api_user, batch_jobs, describe
from tests.worker.stack import REGISTERED_TOKEN, running_stack

NO_RENDER_FAILURES = ("--render-failure-rate", "0", "--rate-limit-rps", "40")


def _items(images: list[str], count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "ref": f"sku-{n}",
            "title": f"Product {n}",
            "description": "Sturdy, light and made to last.",
            "images": [images[n % len(images)]],
            "options": {"duration_s": 5, "aspect_ratio": "1:1"},
            **extra,
        }
        for n in range(count)
    ]


def _job_in(batch_id: str, state: str, when: Any = None) -> Any:
    for job in batch_jobs(batch_id):
        if job.state == state and (when is None or when(job)):
            return job
    return None


def test_sigkill_of_workers_mid_stream_and_mid_poll_loses_no_job_and_renders_once(
    tmp_path: Path, settings: object
) -> None:
    with (
        running_stack(
            tmp_path, profile="realistic", time_scale=0.05, emulator_args=NO_RENDER_FAILURES
        ) as stack,
        api_user() as user,
    ):
        images = [user.upload_image("orange"), user.upload_image("purple")]
        batch = user.post("/v1/batches", json={"name": "kill", "items": _items(images, 6)})

        def streaming(job: Any) -> bool:
            messages = job.checkpoint.get("messages") or []
            return bool(messages) and messages[0].get("status") == "sent"

        wait_for(lambda: _job_in(batch["id"], "prompt", streaming), 90, "a job mid-stream")
        stack.kill("stream", signal.SIGKILL)
        stack.start("stream", "worker", "--stream", "--concurrency", "40", "-n", "stream2@%h")

        wait_for(lambda: _job_in(batch["id"], "render"), 120, "a job polling its render")
        children = stack.worker_children("pipeline")
        assert children, "the prefork worker has pool processes"
        for pid in children:
            os.kill(pid, signal.SIGKILL)

        jobs = wait_for(lambda: all_final(batch["id"]), 240, "every job to finish")
        assert all(job.state == "succeeded" for job in jobs), describe(jobs)
        renders = stack.emulator.stats()["renders"]
        assert renders["posted"] == len(jobs), renders
        assert renders["completed"] == len(jobs), renders


def test_redis_flushed_mid_batch_the_sweeper_finishes_every_job(
    tmp_path: Path, settings: object
) -> None:
    with (
        running_stack(tmp_path, profile="realistic", time_scale=0.03) as stack,
        api_user() as user,
    ):
        images = [user.upload_image("teal")]
        batch = user.post("/v1/batches", json={"name": "flush", "items": _items(images, 10)})
        wait_for(
            lambda: (
                sum(job.state not in ("queued", "admitted") for job in batch_jobs(batch["id"])) >= 5
            ),
            90,
            "jobs to be mid-pipeline",
        )
        redis.Redis.from_url(TEST_REDIS_URL).flushdb()  # every queued message is gone

        jobs = wait_for(lambda: all_final(batch["id"]), 240, "every job to finish")
        assert all(job.state == "succeeded" for job in jobs), describe(jobs)
        assert stack.emulator.stats()["renders"]["completed"] >= len(jobs)


def test_jobs_wait_for_credits_and_finish_once_credits_are_added(
    tmp_path: Path, settings: object
) -> None:
    from core.db import session_scope
    from core.models import Batch, Tenant

    with (
        running_stack(
            tmp_path,
            emulator_args=("--registered-credits", "250", *NO_RENDER_FAILURES),
        ) as stack,
        api_user() as user,
    ):
        images = [user.upload_image("navy")]
        batch = user.post("/v1/batches", json={"name": "credits", "items": _items(images, 5)})

        waiting = wait_for(
            lambda: [j for j in batch_jobs(batch["id"]) if j.state == "waiting_credits"],
            120,
            "jobs to wait for credits",
        )
        assert "out of credits" in (waiting[0].error_message or "")
        with session_scope() as session:
            tenant = session.get(Tenant, user.tenant_id)
            assert tenant is not None and tenant.paused_reason == "out_of_credits"
            stored = session.scalars(select(Batch).where(Batch.id == batch["id"])).one()
            assert stored.warning and "credits" in stored.warning
            assert stored.status == "paused"

        stack.emulator.control("credits", {"token": REGISTERED_TOKEN, "amount": 100_000})

        jobs = wait_for(lambda: all_final(batch["id"]), 180, "every job to finish")
        assert all(job.state == "succeeded" for job in jobs), describe(jobs)


def test_hostile_backend_every_job_ends_final_and_every_failure_says_why(
    tmp_path: Path, settings: object
) -> None:
    with (
        running_stack(
            tmp_path,
            profile="hostile",
            time_scale=0.01,
            emulator_args=("--rate-limit-rps", "40", "--rate-limit-burst", "20"),
        ) as stack,
        api_user() as user,
    ):
        images = [user.upload_image("olive"), user.upload_image("maroon")]
        batch = user.post("/v1/batches", json={"name": "hostile", "items": _items(images, 20)})

        jobs = wait_for(lambda: all_final(batch["id"]), 400, "every job to reach a final state")
        for job in jobs:
            if job.state == "failed":
                assert job.error_code, describe([job])
                assert job.error_message and len(job.error_message) > 20, describe([job])
        assert sum(job.state == "succeeded" for job in jobs) > 0, describe(jobs)
        renders = stack.emulator.stats()["renders"]
        assert renders["completed"] <= len(jobs), renders
