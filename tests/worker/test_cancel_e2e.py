"""End to end: canceling through the API stops the backend's work too. Jobs waiting on renders
that take minutes are canceled one by one and as a batch; real workers cancel each render on
the emulator, and each job says so in its events."""

from pathlib import Path
from typing import Any

from tests.support.waiting import wait_for
from tests.worker.helpers import api_user, batch_jobs, describe
from tests.worker.stack import running_stack


def test_canceled_jobs_have_their_renders_in_flight_canceled_on_the_backend(
    tmp_path: Path, settings: Any
) -> None:
    with running_stack(tmp_path) as stack, api_user() as user:
        stack.emulator.control("config", {"render_delay_s": [10_000, 10_000]})  # 100 s here
        image = user.upload_image("teal")

        def batch(*titles: str) -> str:
            items = [{"title": title, "images": [image]} for title in titles]
            batch_id: str = user.post("/v1/batches", json={"items": items})["id"]
            return batch_id

        alone, together = batch("Teal mug"), batch("Teal cup", "Teal bowl")

        def rendering() -> bool:
            jobs = batch_jobs(alone) + batch_jobs(together)
            return all(job.state == "render" for job in jobs)

        wait_for(rendering, 120, "every job to wait on its render")
        (job,) = batch_jobs(alone)
        user.post(f"/v1/jobs/{job.id}/cancel")
        user.post(f"/v1/batches/{together}/cancel")

        def renders_canceled() -> bool:
            return bool(stack.emulator.stats()["renders"].get("canceled", 0) >= 3)

        wait_for(renders_canceled, 60, "the three renders to be canceled on the backend")
        stats = stack.emulator.stats()["renders"]
        assert stats["canceled"] == 3 and stats.get("completed", 0) == 0, stats
        for canceled in batch_jobs(alone) + batch_jobs(together):
            assert canceled.state == "canceled", describe([canceled])
            events = user.get(f"/v1/jobs/{canceled.id}/events")["items"]
            notes = [event["message"] for event in events if event["kind"] == "render_canceled"]
            render_id = canceled.checkpoint["render_id"]
            assert notes == [f"render {render_id} canceled on the backend"], events
