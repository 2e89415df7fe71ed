"""A supervised stack survives its workers dying, freezing or going deaf: the prefork worker's
main process killed mid-batch is started again, a worker stopped with SIGSTOP is noticed by its
stale heartbeat and replaced, and a worker whose consumer stops exits by itself."""

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from celery import Celery

from tests.support.waiting import wait_for
from tests.worker.helpers import all_final, api_user, batch_jobs, describe
from tests.worker.stack import Stack, running_stack

FAST_WATCHDOG = {"WORKER_HEARTBEAT_S": "1", "WORKER_STALL_S": "6", "WORKER_STALE_S": "8"}


def _items(image: str, count: int) -> list[dict[str, Any]]:
    return [
        {
            "ref": f"sku-{n}",
            "title": f"Product {n}",
            "images": [image],
            "options": {"duration_s": 5, "aspect_ratio": "1:1"},
        }
        for n in range(count)
    ]


def _some_in(batch_id: str, states: set[str]) -> bool:
    return any(job.state in states for job in batch_jobs(batch_id))


@contextmanager
def _supervised_stack(tmp_path: Path, profile: str = "realistic") -> Iterator[tuple[Stack, Any]]:
    """A stack with a quick watchdog and supervisor, and an API user."""
    scale = 0.03 if profile == "realistic" else 0.01
    with (
        running_stack(tmp_path, profile=profile, time_scale=scale, settings=FAST_WATCHDOG) as stack,
        api_user() as user,
    ):
        yield stack, user


def _finishes(stack: Stack, batch_id: str) -> None:
    jobs = wait_for(lambda: all_final(batch_id), 240, "every job to finish")
    assert all(job.state == "succeeded" for job in jobs), describe(jobs)
    renders = stack.emulator.stats()["renders"]
    assert renders["posted"] == len(jobs), renders


def test_sigkill_of_the_prefork_main_process_mid_batch_the_supervised_stack_finishes(
    tmp_path: Path, settings: object
) -> None:
    with _supervised_stack(tmp_path) as (stack, user):
        image = user.upload_image("teal")
        batch = user.post("/v1/batches", json={"name": "kill-main", "items": _items(image, 8)})
        wait_for(lambda: _some_in(batch["id"], {"upload", "render", "export"}), 90, "busy jobs")
        main_pid = stack.processes["pipeline"].pid
        os.kill(main_pid, signal.SIGKILL)  # the main process only: its pool is orphaned

        wait_for(lambda: stack.processes["pipeline"].pid != main_pid, 30, "the worker's restart")
        assert "pipeline exited with code -9" in stack.supervisor_log()
        _finishes(stack, batch["id"])


def test_a_frozen_worker_is_replaced_when_its_heartbeat_goes_stale(
    tmp_path: Path, settings: object
) -> None:
    with _supervised_stack(tmp_path) as (stack, user):
        wait_for(lambda: stack.heartbeat_path("stream").exists(), 60, "the first heartbeat")
        frozen_pid = stack.processes["stream"].pid
        os.kill(frozen_pid, signal.SIGSTOP)
        image = user.upload_image("navy")
        batch = user.post("/v1/batches", json={"name": "frozen", "items": _items(image, 4)})

        wait_for(lambda: stack.processes["stream"].pid != frozen_pid, 60, "a new stream worker")
        assert "stream has not reported healthy" in stack.supervisor_log()
        _finishes(stack, batch["id"])


def test_a_worker_whose_consumer_stops_exits_by_itself_and_is_started_again(
    tmp_path: Path, settings: object
) -> None:
    with (
        running_stack(tmp_path, profile="ideal", time_scale=0.01, settings=FAST_WATCHDOG) as stack,
        api_user() as user,
    ):
        deaf_pid = stack.processes["pipeline"].pid
        wait_for(lambda: stack.heartbeat_path("pipeline").exists(), 60, "the first heartbeat")
        # Alive, answering pings, consuming nothing: the failure a broker reconnect can leave.
        control = Celery(broker=os.environ["REDIS_URL"], set_as_current=False)
        nodes = [name for reply in control.control.ping(timeout=5) or [] for name in reply]
        node = next(name for name in nodes if name.startswith("pipeline-"))
        replies = control.control.cancel_consumer("pipeline", destination=[node], reply=True)
        assert replies, "the worker acknowledged the cancel"
        image = user.upload_image("olive")
        batch = user.post("/v1/batches", json={"name": "deaf", "items": _items(image, 3)})

        wait_for(lambda: stack.processes["pipeline"].pid != deaf_pid, 60, "a new pipeline worker")
        assert "cannot consume" in stack.log("pipeline")
        _finishes(stack, batch["id"])
        control.close()
