"""Two hosts and one S3 store: the API and the workers each with a STORAGE_DIR of their own, as
on separate machines. Every asset reaches the workers and every video reaches the user through
the store; neither host's disk keeps anything."""

import hashlib
import io
from pathlib import Path

import av
import httpx

from core.settings import get_settings
from tests.support.waiting import wait_for
from tests.worker.helpers import all_final, api_user, describe
from tests.worker.stack import running_stack


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


def test_api_and_workers_on_separate_disks_share_only_the_object_store(
    tmp_path: Path, settings: object, s3_environment: dict[str, str]
) -> None:
    worker_host, api_host = tmp_path / "worker-host", tmp_path / "api-host"
    worker_settings = {**s3_environment, "STORAGE_DIR": str(worker_host)}
    with running_stack(tmp_path, settings=worker_settings) as stack:
        api_settings = get_settings().model_copy(update={"storage_dir": api_host})
        with api_user(settings=api_settings) as user:
            images = [user.upload_image(color) for color in ("red", "green", "blue")]
            items = [
                {
                    "ref": f"sku-{n}",
                    "title": f"Product {n}",
                    "description": f"A fine product number {n}.",
                    "images": [images[n % 3], images[(n + 1) % 3]],
                    "options": {"duration_s": 5},
                }
                for n in range(6)
            ]
            batch = user.post("/v1/batches", json={"name": "two hosts", "items": items})

            jobs = wait_for(lambda: all_final(batch["id"]), 240, "every job to finish")
            assert all(job.state == "succeeded" for job in jobs), describe(jobs)
            assert files_under(worker_host) == [], "the workers kept nothing on their disk"

            for job in jobs:
                video = user.client.get(f"/v1/jobs/{job.id}/video", headers=user.headers)
                assert video.status_code == 200, video.text
                assert hashlib.sha256(video.content).hexdigest() == job.output["sha256"]
                with av.open(io.BytesIO(video.content)) as container:
                    assert container.streams.video[0].codec_context.name == "h264"
                poster = user.client.get(f"/v1/jobs/{job.id}/poster", headers=user.headers)
                assert poster.status_code == 200 and poster.content[:3] == b"\xff\xd8\xff"
                redirect = user.client.get(
                    f"/v1/jobs/{job.id}/video?redirect=1",
                    headers=user.headers,
                    follow_redirects=False,
                )
                assert redirect.status_code == 307
                assert httpx.get(redirect.headers["location"]).content == video.content
            assert files_under(api_host) == [], "the API kept nothing on its disk"
        assert "asset_missing" not in stack.log_tail("pipeline", lines=400)
