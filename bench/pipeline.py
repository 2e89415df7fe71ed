"""Figures 1, 2, 3 and 5: throughput and CPU per job, makespan, rate use, memory in waiting.

Each figure runs its own stack (database, emulator, API process, Celery workers and beat) on
loopback, submits a batch through the HTTP API and reads job states from Postgres.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import (
    NO_FAULTS,
    BenchStack,
    bench_stack,
    cpu_seconds,
    final_count,
    identical_items,
    jobs_by_state,
    profile_file,
    rss_mb,
    wait_until,
)

FAST = {
    "NEMO_RATE_LIMIT_RPS": "1000",
    "NEMO_RATE_LIMIT_BURST": "200",
    "NEMO_POLL_INTERVAL_S": "0.25",
    "CLAIM_INTERVAL_S": "0.25",
    "SWEEP_INTERVAL_S": "10",
    "HEARTBEAT_STALE_S": "120",
    "STEP_LEASE_S": "60",
    "LOG_LEVEL": "WARNING",
}
WORKER_GROUPS = ("pipeline", "stream", "beat")
MAKESPAN_TIME_SCALE = 0.02


@dataclass
class Throughput:
    jobs: int
    seconds: float
    jobs_per_s: float
    api_cpu_ms: float
    worker_cpu_ms: float
    emulator_cpu_ms: float
    succeeded: int

    def idle_machine_jobs_per_s(self, cores: int) -> float:
        """What `cores` free cores would carry at this CPU cost (Postgres and Redis left out)."""
        return cores * 1000 / (self.api_cpu_ms + self.worker_cpu_ms + self.emulator_cpu_ms)


def _run_batch(bench: BenchStack, items: list[dict[str, Any]], timeout_s: float) -> float:
    """Submit and wait until every job is final; wall seconds from submit."""
    with bench.client() as client:
        started = time.monotonic()
        batch_id = bench.submit(client, items, "bench")
    wait_until(lambda: final_count(batch_id) >= len(items), timeout_s, "the batch", every_s=0.1)
    return time.monotonic() - started


def _warm(bench: BenchStack, image: str) -> None:
    """A few jobs first: the token, the cached render and the imports of every prefork child
    (PyAV is imported at a child's first download) are warm before CPU is counted."""
    _run_batch(bench, identical_items(image, 8), 120)


def _cpu_by_group(bench: BenchStack) -> dict[str, float]:
    """CPU seconds so far of each worker process group, the API's and the emulator's."""
    groups = {name: cpu_seconds(bench.pgids(name)) for name in (*WORKER_GROUPS, "api")}
    return {**groups, "emulator": cpu_seconds([bench.stack.emulator.process.pid])}


def _cpu_ms_per_job(bench: BenchStack, before: dict[str, float], jobs: int) -> dict[str, float]:
    """CPU ms per job of each group since `before`, printed as one line."""
    now = _cpu_by_group(bench)
    per_job = {name: (now[name] - before[name]) * 1000 / jobs for name in before}
    shown = ", ".join(f"{name} {ms:.1f}" for name, ms in per_job.items())
    print(f"   CPU ms per job by process group: {shown}", flush=True)
    return per_job


def throughput(tmp: Path, jobs: int, pipeline: int, stream: int) -> Throughput:
    """Figure 1: the ideal profile, renders from cache, jobs/s and CPU ms per job."""
    with bench_stack(tmp, profile="ideal", time_scale=1.0, settings=FAST) as bench:
        bench.start_workers(pipeline=pipeline, stream=stream)
        bench.start_api()
        bench.make_tenant(inflight_limit=10_000)
        with bench.client() as client:
            image = bench.upload_image(client, "orange")
        _warm(bench, image)
        before = _cpu_by_group(bench)
        with bench.client() as client:
            started = time.monotonic()
            batch_id = bench.submit(client, identical_items(image, jobs), "throughput")
        wait_until(lambda: final_count(batch_id) >= jobs, 600, "the batch", every_s=0.1)
        seconds = time.monotonic() - started
        per_job = _cpu_ms_per_job(bench, before, jobs)
        work = sum(per_job[name] for name in WORKER_GROUPS)
        return Throughput(
            jobs=jobs,
            seconds=seconds,
            jobs_per_s=jobs / seconds,
            api_cpu_ms=per_job["api"],
            worker_cpu_ms=work,
            emulator_cpu_ms=per_job["emulator"],
            succeeded=jobs_by_state(batch_id)["succeeded"],
        )


@dataclass
class Makespan:
    jobs: int
    makespan_s: float
    single_s: list[float]
    one_at_a_time_s: float
    succeeded: int

    def bound_s(self, jobs_per_s: float) -> float:
        return 2 * max(self.single_s) + self.jobs / jobs_per_s


def makespan(tmp: Path, jobs: int, singles: int, pipeline: int, stream: int) -> Makespan:
    """Figure 2: realistic latencies (no faults) at time scale 0.02, renders from cache."""
    profile = profile_file(tmp / "profiles", "realistic", **NO_FAULTS)
    # Every latency is scaled by 0.02 here, so the poll interval is too: the vendor's 30 s
    # (nemo-api.md) becomes 0.6 s. Polling 4x more often than that only multiplies poll tasks.
    settings = {**FAST, "NEMO_POLL_INTERVAL_S": str(30 * MAKESPAN_TIME_SCALE)}
    with bench_stack(
        tmp, profile=profile, time_scale=MAKESPAN_TIME_SCALE, settings=settings
    ) as bench:
        bench.start_workers(pipeline=pipeline, stream=stream)
        bench.start_api()
        bench.make_tenant(inflight_limit=1000)
        with bench.client() as client:
            image = bench.upload_image(client, "teal")
        _warm(bench, image)
        single = [_run_batch(bench, identical_items(image, 1), 120) for _ in range(singles)]
        before = _cpu_by_group(bench)
        with bench.client() as client:
            started = time.monotonic()
            batch_id = bench.submit(client, identical_items(image, jobs), "makespan")
        wait_until(lambda: final_count(batch_id) >= jobs, 900, "the batch", every_s=0.2)
        seconds = time.monotonic() - started
        _cpu_ms_per_job(bench, before, jobs)
        return Makespan(
            jobs=jobs,
            makespan_s=seconds,
            single_s=single,
            one_at_a_time_s=sum(single) / len(single) * jobs,
            succeeded=jobs_by_state(batch_id)["succeeded"],
        )


@dataclass
class RateUse:
    limit_rps: float
    achieved_rps: float
    share_429: float
    window_s: float
    requests: int


def _requests(stats: dict[str, Any]) -> tuple[int, int]:
    """Backend requests (control routes left out) and how many were answered 429."""
    total = limited = 0
    for endpoint, codes in stats["requests"].items():
        if "/_emulator" in endpoint:
            continue
        for code, count in codes.items():
            total += count
            limited += count if code.startswith("429") else 0
    return total, limited


def rate_use(tmp: Path, jobs: int, window_s: float, limit_rps: float = 20.0) -> RateUse:
    """Figure 3: the emulator limited to `limit_rps`; what share of it the workers use."""
    settings = {**FAST, "NEMO_RATE_LIMIT_RPS": str(limit_rps), "NEMO_RATE_LIMIT_BURST": "5"}
    limits = ("--rate-limit-rps", str(limit_rps), "--rate-limit-burst", str(int(limit_rps)))
    with bench_stack(
        tmp, profile="ideal", time_scale=1.0, settings=settings, emulator_args=limits
    ) as bench:
        bench.start_workers(pipeline=2, stream=100)
        bench.start_api()
        bench.make_tenant(inflight_limit=10_000)
        with bench.client() as client:
            image = bench.upload_image(client, "navy")
            batch_id = bench.submit(client, identical_items(image, jobs), "rate")
        wait_until(lambda: final_count(batch_id) < jobs and _busy(batch_id), 60, "jobs running")
        time.sleep(5)  # past the burst: measure the steady rate
        before, t0 = _requests(bench.stack.emulator.stats()), time.monotonic()
        time.sleep(window_s)
        after, t1 = _requests(bench.stack.emulator.stats()), time.monotonic()
        if final_count(batch_id) >= jobs:
            raise RuntimeError("the batch drained inside the window: raise --rate-jobs")
        requests = after[0] - before[0]
        return RateUse(
            limit_rps=limit_rps,
            achieved_rps=requests / (t1 - t0),
            share_429=(after[1] - before[1]) / max(1, requests),
            window_s=t1 - t0,
            requests=requests,
        )


def _busy(batch_id: str) -> bool:
    counts = jobs_by_state(batch_id)
    return sum(n for state, n in counts.items() if state not in ("queued", "admitted")) > 0


@dataclass
class Memory:
    jobs_waiting: int
    rss_mb: float
    pss_mb: float
    processes: int
    idle_rss_mb: float
    """The same processes after two warm-up jobs, before the batch: what the jobs add is the
    difference."""


def memory(tmp: Path, jobs: int, pipeline: int, stream: int) -> Memory:
    """Figure 5: `jobs` jobs all waiting on renders that do not finish; RSS of the workers."""
    profile = profile_file(tmp / "profiles", "ideal", render_delay_s=[1e6, 1e6])
    with bench_stack(tmp, profile=profile, time_scale=1.0, settings=FAST) as bench:
        bench.start_workers(pipeline=pipeline, stream=stream)
        bench.start_api()
        bench.make_tenant(inflight_limit=jobs + 10)
        with bench.client() as client:
            image = bench.upload_image(client, "olive")
            warm = bench.submit(client, identical_items(image, 2), "warm")
        wait_until(lambda: jobs_by_state(warm)["render"] >= 2, 120, "warm-up jobs", every_s=0.5)
        idle_mb, _, _ = rss_mb(bench.pgids(*WORKER_GROUPS))
        with bench.client() as client:
            batch_id = bench.submit(client, identical_items(image, jobs), "memory")
        wait_until(
            lambda: jobs_by_state(batch_id)["render"] >= jobs,
            900,
            f"{jobs} jobs waiting on renders",
            every_s=1,
        )
        time.sleep(3)  # a few polling rounds with everything in flight
        mb, pss, processes = rss_mb(bench.pgids(*WORKER_GROUPS))
        return Memory(
            jobs_waiting=jobs_by_state(batch_id)["render"],
            rss_mb=mb,
            pss_mb=pss,
            processes=processes,
            idle_rss_mb=idle_mb,
        )
