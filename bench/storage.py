"""Figure 9: the makespan of one batch with local storage beside the same with object storage
(the embedded SeaweedFS over S3), in one run on the same machine.

Both runs are figure 2's setup (realistic latencies x0.02, no faults, renders from cache) with
one image uploaded through the API for every job: with object storage every upload step reads it
from the store and every download step writes the video and its poster there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.pipeline import FAST, MAKESPAN_TIME_SCALE, _warm
from bench.stack import (
    NO_FAULTS,
    bench_stack,
    final_count,
    identical_items,
    jobs_by_state,
    object_store,
    profile_file,
    wait_until,
)


@dataclass
class StorageMakespan:
    jobs: int
    local_s: float
    object_s: float
    local_ok: int
    object_ok: int

    @property
    def ratio(self) -> float:
        return self.object_s / self.local_s


def _makespan(
    tmp: Path, jobs: int, pipeline: int, stream: int, storage: dict[str, str]
) -> tuple[float, int]:
    profile = profile_file(tmp / "profiles", "realistic", **NO_FAULTS)
    settings = {**FAST, "NEMO_POLL_INTERVAL_S": str(30 * MAKESPAN_TIME_SCALE), **storage}
    with bench_stack(
        tmp, profile=profile, time_scale=MAKESPAN_TIME_SCALE, settings=settings
    ) as bench:
        bench.start_workers(pipeline=pipeline, stream=stream)
        bench.make_tenant(inflight_limit=1000)
        with bench.client() as client:
            image = bench.upload_image(client, "maroon")
        _warm(bench, image)
        with bench.client() as client:
            started = time.monotonic()
            batch_id = bench.submit(client, identical_items(image, jobs), "storage")
        wait_until(lambda: final_count(batch_id) >= jobs, 900, "the batch", every_s=0.2)
        return time.monotonic() - started, jobs_by_state(batch_id)["succeeded"]


def storage_makespan(tmp: Path, jobs: int, pipeline: int, stream: int) -> StorageMakespan:
    local_s, local_ok = _makespan(tmp / "local", jobs, pipeline, stream, {})
    with object_store(tmp / "s3") as storage:
        object_s, object_ok = _makespan(tmp / "object", jobs, pipeline, stream, storage)
    return StorageMakespan(jobs, local_s, object_s, local_ok, object_ok)
