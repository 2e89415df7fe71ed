"""Flower reads as the pipeline's products: during a real batch, every step task of every job
is named by its ref (Celery's `argsrepr`), and housekeeping is one tick, not three tasks."""

import uuid
from pathlib import Path
from typing import Any

import httpx

from core.loopback import free_port
from tests.support.waiting import wait_for
from tests.worker.helpers import all_final, api_user, describe
from tests.worker.stack import REGISTERED_TOKEN, running_stack

STEPS = (
    "worker.token",
    "worker.session",
    "worker.upload",
    "worker.prompt",
    "worker.export",
    "worker.render_poll",
    "worker.download",
)
HOUSEKEEPING_REPLACED = ("worker.claim_due", "worker.claim_webhooks")


def test_flower_names_every_step_of_every_job_by_its_ref(tmp_path: Path, settings: Any) -> None:
    auth = ("operator", f"pw-{uuid.uuid4().hex[:10]}")
    port = free_port()
    flower_env = {"FLOWER_USER": auth[0], "FLOWER_PASSWORD": auth[1]}
    with running_stack(tmp_path, workers=False, settings=flower_env) as stack, api_user() as user:
        node = uuid.uuid4().hex[:6]
        stack.start("pipeline", "worker", "--events", "--concurrency", "2", "-n", f"p-{node}@%h")
        stack.start("stream", "worker", "--stream", "--events", "-n", f"s-{node}@%h")
        stack.start("beat", "beat", "--schedule", str(tmp_path / "beat-schedule"))
        stack.start("flower", "flower", "--port", str(port))

        def flower(path: str) -> Any:
            answer = httpx.get(f"http://127.0.0.1:{port}{path}", auth=auth, timeout=10)
            answer.raise_for_status()
            return answer.json()

        def both_workers_seen() -> bool:
            try:
                return len(flower("/api/workers?refresh=1")) >= 2
            except httpx.HTTPError:
                return False

        wait_for(both_workers_seen, 90, "Flower to see both workers")
        image = user.upload_image("teal")
        refs = ["mug-blue", "mug-red", "teapot-9"]
        items = [{"ref": ref, "title": f"The {ref}", "images": [image]} for ref in refs]
        batch = user.post("/v1/batches", json={"name": "flower-check", "items": items})

        def every_step_named() -> dict[str, Any] | None:
            tasks: dict[str, Any] = flower("/api/tasks")
            shown = {(task["name"], task["args"]) for task in tasks.values()}
            missing = [
                (step, ref)
                for step in STEPS
                for ref in refs
                if not any(name == step and ref in str(args) for name, args in shown)
            ]
            return tasks if not missing else None

        tasks = wait_for(every_step_named, 240, "Flower to list every step by its ref")
        jobs = wait_for(lambda: all_final(batch["id"]), 120, "the batch to finish")
        assert all(job.state == "succeeded" for job in jobs), describe(jobs)

        steps = [task for task in tasks.values() if task["name"] in STEPS]
        by_id = {str(job.id)[:8]: job.ref for job in jobs}
        for task in steps:
            args = str(task["args"])
            assert "batch flower-check" in args and "attempt " in args, args
            (job_prefix,) = [prefix for prefix in by_id if f"job {prefix}" in args]
            assert args.startswith(f"{by_id[job_prefix]} (job {job_prefix}"), args
        names = {task["name"] for task in tasks.values()}
        assert "worker.tick" in names, names
        assert not names & set(HOUSEKEEPING_REPLACED), "beat sends one tick, not each pass"
        assert REGISTERED_TOKEN not in str(tasks)
