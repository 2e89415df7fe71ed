"""Figure 8: backend requests per succeeded job on the `realistic` profile.

At the backend's rate limit, requests per job is what bounds a batch's makespan: a batch of N
jobs needs N x (requests per job) / (allowed requests per second) at least. Counted by the
emulator (control routes and the media it serves left out), faults of the profile included.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.stack import bench_stack, final_count, jobs_by_state, wait_until

TIME_SCALE = 0.02
IMAGES_PER_PRODUCT = 3
SETTINGS = {
    "NEMO_RATE_LIMIT_RPS": "40",
    "NEMO_RATE_LIMIT_BURST": "20",
    # The vendor's 30 s between render polls, scaled like every latency of the profile.
    "NEMO_POLL_INTERVAL_S": str(30 * TIME_SCALE),
    "LOG_LEVEL": "WARNING",
}
LIMITS = ("--rate-limit-rps", "60", "--rate-limit-burst", "30", "--render-scale", "0.05")


@dataclass
class RequestsPerJob:
    jobs: int
    succeeded: int
    requests: int
    by_endpoint: Counter[str] = field(default_factory=Counter)

    @property
    def per_succeeded_job(self) -> float:
        return self.requests / max(1, self.succeeded)

    def breakdown(self) -> str:
        per_job = sorted(self.by_endpoint.items(), key=lambda item: -item[1])
        return ", ".join(f"{name} {n / max(1, self.succeeded):.2f}" for name, n in per_job)


def _endpoint(route: str) -> str:
    """A short name for a route template: `POST /run_sse` -> `run_sse`."""
    method, _, path = route.partition(" ")
    if path.startswith("/api/render/proxy/lambda/{"):
        return "render status" if method == "GET" else "render cancel"
    names = {
        "/run_sse": "run_sse",
        "/api/render/proxy/lambda": "export",
        "/api/tasks/{user}/with-session/nemo_agent": "session",
        "/api/auth/anonymous-token": "token",
        "/api/credits/balance/simple": "credits",
        "/api/render/proxy/{render_id}/download": "download",
    }
    if path in names:
        return names[path]
    if path.startswith("/api/upload-video"):
        return "upload"
    if path.startswith("/api/state"):
        return "state"
    return path


def _counted(stats: dict[str, Any]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for route, codes in stats["requests"].items():
        if "/_emulator" in route or " /media/" in route:
            continue
        counts[_endpoint(route)] += sum(codes.values())
    return counts


def requests_per_job(tmp: Path, jobs: int, pipeline: int, stream: int) -> RequestsPerJob:
    with bench_stack(
        tmp, profile="realistic", time_scale=TIME_SCALE, settings=SETTINGS, emulator_args=LIMITS
    ) as bench:
        bench.start_workers(pipeline=pipeline, stream=stream)
        bench.make_tenant(inflight_limit=jobs)
        with bench.client() as client:
            colors = ("red", "green", "blue", "orange", "purple", "teal")
            images = [bench.upload_image(client, color) for color in colors]
            items = [
                {
                    "ref": f"sku-{n:05d}",
                    "title": f"Product {n}",
                    "description": "Sturdy, light and made to last.",
                    "images": [images[(n + k) % len(images)] for k in range(IMAGES_PER_PRODUCT)],
                    "options": {"duration_s": 5, "aspect_ratio": "1:1"},
                }
                for n in range(jobs)
            ]
            batch_id = bench.submit(client, items, "requests")
        wait_until(lambda: final_count(batch_id) >= jobs, 900, "the batch", every_s=0.5)
        counts = _counted(bench.stack.emulator.stats())
        return RequestsPerJob(
            jobs=jobs,
            succeeded=jobs_by_state(batch_id)["succeeded"],
            requests=sum(counts.values()),
            by_endpoint=counts,
        )
