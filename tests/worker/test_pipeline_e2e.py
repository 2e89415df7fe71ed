"""End to end: batches submitted through the API become MP4s, via real Celery workers, beat,
Postgres, Redis and the emulator over HTTP."""

from pathlib import Path
from typing import TypedDict

import av

from tests.support.waiting import wait_for
from tests.worker.helpers import all_final, api_user, describe
from tests.worker.stack import running_stack

ASPECTS = {"9:16": 9 / 16, "16:9": 16 / 9, "1:1": 1.0}


class ItemOptions(TypedDict):
    aspect_ratio: str
    duration_s: int


class Item(TypedDict):
    ref: str
    title: str
    description: str
    images: list[str]
    options: ItemOptions


def test_thirty_jobs_with_realistic_latencies_all_succeed_with_one_render_each(
    tmp_path: Path, settings: object
) -> None:
    with running_stack(tmp_path, profile="realistic", time_scale=0.01) as stack, api_user() as user:
        images = [user.upload_image(color) for color in ("red", "green", "blue")]
        aspects = list(ASPECTS)
        items: list[Item] = [
            {
                "ref": f"sku-{n}",
                "title": f"Product {n}",
                "description": f"A fine product number {n}. Durable and light.",
                "images": [images[n % 3], images[(n + 1) % 3]],
                "options": {"aspect_ratio": aspects[n % 3], "duration_s": 5 + n % 2},
            }
            for n in range(30)
        ]
        batch = user.post("/v1/batches", json={"name": "e2e", "items": items})

        jobs = wait_for(lambda: all_final(batch["id"]), 300, "every job to finish")

        assert all(job.state == "succeeded" for job in jobs), describe(jobs)
        for job, item in zip(jobs, items, strict=True):
            with av.open(tmp_path / "storage" / job.output["path"]) as container:
                video = container.streams.video[0]
                width, height = video.codec_context.width, video.codec_context.height
                duration = float(container.duration) / av.time_base
                assert video.codec_context.name == "h264"
                assert container.streams.audio, "the video has sound"
            expected = item["options"]
            assert abs(width / height - ASPECTS[expected["aspect_ratio"]]) < 0.02
            assert abs(duration - expected["duration_s"]) <= 0.15
            assert (tmp_path / "storage" / job.output["poster_path"]).exists()
            assert job.timeline_summary.startswith("Timeline (")

        answer = user.get(f"/v1/batches/{batch['id']}")
        assert answer["status"] == "succeeded"
        assert answer["progress"] == 1

        stats = stack.emulator.stats()
        assert stats["renders"]["completed"] == len(items), stats["renders"]
        assert stats["missing_headers"]["auth"]["count"] == 0, stats["missing_headers"]
        assert stats["missing_headers"]["attribution"]["count"] == 0, stats["missing_headers"]
