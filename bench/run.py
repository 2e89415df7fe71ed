"""`make bench`: every figure in one run, printed side by side with its target.

    .venv/bin/python -m bench.run [--quick] [--only 1,2,3,4,5,6,8,9,10]

Speed and endurance are measured and printed here, never asserted in tests; the figures kept
in bench/RESULTS.md come from this command. Everything runs on loopback.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.stack import private_redis


@dataclass
class Sizes:
    throughput_jobs: int
    makespan_jobs: int
    singles: int
    rate_jobs: int
    rate_window_s: float
    intake_items: int
    intake_rounds: int
    memory_jobs: int
    videos_full: int
    videos_quarter: int
    requests_jobs: int
    storage_jobs: int


FULL = Sizes(400, 1000, 5, 300, 30, 10_000, 3, 2000, 4, 8, 200, 200)
QUICK = Sizes(150, 300, 3, 200, 15, 10_000, 1, 500, 2, 4, 60, 100)
Row = tuple[str, str, str, bool]


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a busy machine)")
    parser.add_argument(
        "--only", default="1,2,3,4,5,6,8,9,10", help="figures to run, comma-separated"
    )
    parser.add_argument("--pipeline-workers", type=int, default=3, help="prefork processes")
    parser.add_argument("--stream-threads", type=int, default=200, help="stream worker threads")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    only = {int(n) for n in args.only.split(",")}
    print(f"nemo-batch bench ({'quick' if args.quick else 'full'} sizes); {_load()}", flush=True)
    rows: list[Row] = []
    started = time.monotonic()
    with private_redis(), tempfile.TemporaryDirectory(prefix="nemo-bench-") as tmp:
        rows += _pipeline_figures(
            Path(tmp), sizes, only, args.pipeline_workers, args.stream_threads
        )
        if 4 in only:
            rows += _intake(sizes)
        if 6 in only:
            rows += _render(sizes)
        if 10 in only:
            rows += _page()
    print(f"\n{'figure':58} {'measured':>22} {'target':>14}  met")
    for name, measured, target, met in rows:
        print(f"{name:58} {measured:>22} {target:>14}  {'yes' if met else 'NO'}")
    print(f"\n{time.monotonic() - started:.0f} s in all; {_load()}")


def _pipeline_figures(
    tmp: Path, sizes: Sizes, only: set[int], pipeline: int, stream: int
) -> list[Row]:
    from bench import pipeline as figures

    rows: list[Row] = []
    jobs_per_s = 40.0
    if 1 in only:
        print("1. throughput (ideal, cached renders) ...", flush=True)
        t = figures.throughput(tmp / "f1", sizes.throughput_jobs, pipeline, stream)
        print(f"   {t}", flush=True)
        jobs_per_s = t.jobs_per_s
        rows += [
            (
                f"1. jobs/s, {t.jobs} jobs ({t.succeeded} ok)",
                f"{t.jobs_per_s:.1f}",
                ">= 40",
                t.jobs_per_s >= 40,
            ),
            ("1. CPU ms per job: API (intake)", f"{t.api_cpu_ms:.1f}", "-", True),
            ("1. CPU ms per job: workers and beat", f"{t.worker_cpu_ms:.1f}", "-", True),
            ("1. CPU ms per job: emulator", f"{t.emulator_cpu_ms:.1f}", "-", True),
            (
                "1. jobs/s 2 idle cores would carry at that CPU cost",
                f"{t.idle_machine_jobs_per_s(2):.1f}",
                ">= 40",
                t.idle_machine_jobs_per_s(2) >= 40,
            ),
        ]
    if 2 in only:
        print("2. makespan (realistic latencies x0.02, cached renders) ...", flush=True)
        m = figures.makespan(tmp / "f2", sizes.makespan_jobs, sizes.singles, pipeline, stream)
        print(f"   {m}", flush=True)
        bound = m.bound_s(jobs_per_s)
        rows += [
            (
                f"2. makespan of {m.jobs} jobs ({m.succeeded} ok), s",
                f"{m.makespan_s:.1f}",
                f"<= {bound:.1f}",
                m.makespan_s <= bound,
            ),
            ("2. slowest single job alone, s", f"{max(m.single_s):.2f}", "-", True),
            ("2. one at a time (mean single x jobs), s", f"{m.one_at_a_time_s:.0f}", "-", True),
            (
                "2. speed-up over one at a time",
                f"{m.one_at_a_time_s / m.makespan_s:.0f}x",
                "-",
                True,
            ),
        ]
    if 3 in only:
        print("3. rate use (emulator limited to 20 requests/s) ...", flush=True)
        r = figures.rate_use(tmp / "f3", sizes.rate_jobs, sizes.rate_window_s)
        print(f"   {r}", flush=True)
        share = r.achieved_rps / r.limit_rps
        rows += [
            (
                f"3. achieved rate / limit ({r.achieved_rps:.1f} of {r.limit_rps:g}/s)",
                f"{share:.0%}",
                ">= 90%",
                share >= 0.9,
            ),
            (
                f"3. answered 429 ({r.requests} requests)",
                f"{r.share_429:.1%}",
                "<= 2%",
                r.share_429 <= 0.02,
            ),
        ]
    if 5 in only:
        # The deployment a user gets: `nemo-batch worker`, `worker --stream` and `beat` with
        # their default pool sizes (2 processes, 100 threads), not the throughput figures' sizes.
        print("5. memory with jobs waiting on renders (CLI default pools) ...", flush=True)
        mem = figures.memory(tmp / "f5", sizes.memory_jobs, pipeline=2, stream=100)
        print(f"   {mem}", flush=True)
        rows.append(
            (
                f"5. worker RSS, {mem.jobs_waiting} jobs waiting, {mem.processes} processes, MB"
                f" (idle {mem.idle_rss_mb:.0f})",
                f"{mem.rss_mb:.0f}",
                "<= 600",
                mem.rss_mb <= 600,
            )
        )
        rows.append(("5. the same as PSS (shared pages split), MB", f"{mem.pss_mb:.0f}", "-", True))
    if 8 in only:
        from bench.backend_requests import requests_per_job

        print("8. backend requests per succeeded job (realistic profile) ...", flush=True)
        req = requests_per_job(tmp / "f8", sizes.requests_jobs, pipeline, stream)
        print(f"   {req.requests} requests, {req.succeeded} ok: {req.breakdown()}", flush=True)
        rows.append(
            (
                f"8. backend requests per succeeded job, realistic ({req.succeeded} ok)",
                f"{req.per_succeeded_job:.1f}",
                "<= 10",
                req.per_succeeded_job <= 10,
            )
        )
    if 9 in only:
        from bench.storage import storage_makespan

        print("9. makespan with local storage, then object storage (SeaweedFS) ...", flush=True)
        s = storage_makespan(tmp / "f9", sizes.storage_jobs, pipeline, stream)
        print(f"   {s}; {_load()}", flush=True)
        rows += [
            (
                f"9. makespan of {s.jobs} jobs, local storage ({s.local_ok} ok), s",
                f"{s.local_s:.1f}",
                "-",
                True,
            ),
            (
                f"9. the same on object storage ({s.object_ok} ok), s",
                f"{s.object_s:.1f} ({s.ratio:.2f}x)",
                "<= 1.2x",
                s.ratio <= 1.2,
            ),
        ]
    return rows


def _intake(sizes: Sizes) -> list[Row]:
    from bench.intake import intake

    print("4. intake ...", flush=True)
    best = intake(sizes.intake_items, sizes.intake_rounds)
    return [
        (f"4. {sizes.intake_items} items by {label}: time to 201, s", f"{s:.2f}", "<= 2", s <= 2)
        for label, s in best.items()
    ]


def _render(sizes: Sizes) -> list[Row]:
    from bench.render import render_throughput

    rows: list[Row] = []
    for scale, videos in ((1.0, sizes.videos_full), (0.25, sizes.videos_quarter)):
        print(f"6. render throughput at scale {scale} ...", flush=True)
        f = render_throughput(scale, videos)
        print(f"   {f}", flush=True)
        rows.append(
            (
                f"6. 30 s videos/min at scale {scale:g}: emulator vs ffmpeg",
                f"{f.emulator_per_min:.1f} vs {f.ffmpeg_per_min:.1f}",
                "<= 1.3x",
                f.ratio <= 1.3,
            )
        )
    return rows


def _page() -> list[Row]:
    from bench.page import first_screen, zip_memory

    print("10. the web page's first screen at 10,000 jobs; the zip of 200 videos ...", flush=True)
    page = first_screen(10_000, 5)
    print(f"   {page}", flush=True)
    archive = zip_memory(200, 1.5)
    print(f"   {archive}", flush=True)
    median = statistics.median(page.first_screen_s)
    growth = archive.rss_peak_mb - archive.rss_before_mb
    return [
        ("10. first screen of a 10,000-job batch's page, median of 5, s", f"{median:.2f}",
         "<= 1", median <= 1),
        (f"10. API RSS growth streaming a {archive.zip_mb:.0f} MB zip of 200 videos, MB",
         f"{growth:.1f}", "<= 20", growth <= 20),
    ]  # fmt: skip


if __name__ == "__main__":
    main()
