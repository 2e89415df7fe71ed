"""`make chaos`: faults injected into a running batch, and a table of what became of its jobs.

    .venv/bin/python -m bench.chaos [--jobs 200] [--only kill,redis,...,hostile,variants]

Each scenario runs its own stack against the emulator on loopback with at least 200 jobs, each
job with a draft of its own, so that a render paid twice shows up as two completed renders of
one draft in the emulator's stats (tallied across emulator restarts, since stats live in
memory). Lost = not final within the bound. The Redis restarted is the suite's private one;
the Postgres restart is the machine's cluster (brief: other test runs may blip). `variants`
serves every backend variant of emulator/variants.py at once, with silences longer than the
workers' request timeout, and counts renders of drafts the agent did not edit.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.stack import (
    BenchStack,
    RedisServer,
    bench_stack,
    failures_by_code,
    final_count,
    identical_items,
    jobs_by_state,
    private_redis,
    restart_emulator,
    wait_until,
)

SETTINGS = {"NEMO_RATE_LIMIT_RPS": "35", "LOG_LEVEL": "WARNING"}
REALISTIC_ARGS = ("--rate-limit-rps", "40", "--rate-limit-burst", "20", "--render-scale", "0.05")


@dataclass
class Outcome:
    scenario: str
    faults: str
    submitted: int
    succeeded: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicate_renders: int = 0
    unedited_renders: int = 0
    seconds: float = 0.0


@dataclass
class Scenario:
    name: str
    profile: str
    inject: Callable[[BenchStack, RedisServer, str, threading.Event], str]
    bound_s: float
    emulator_args: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    profile_fields: dict[str, object] = field(default_factory=dict)


def _mid_pipeline(batch_id: str, share: float) -> bool:
    counts = jobs_by_state(batch_id)
    started = sum(n for s, n in counts.items() if s not in ("queued", "admitted"))
    return started >= share * sum(counts.values())


def _kill_workers(bench: BenchStack, _: RedisServer, batch_id: str, done: threading.Event) -> str:
    """SIGKILL a random pool child of the prefork worker, or the whole stream worker (then
    started again), every 3 to 5 seconds until the batch is final."""
    chooser, kills = random.Random(7), 0
    stack = bench.stack
    while not done.wait(chooser.uniform(3, 5)):
        children = stack.worker_children("pipeline")
        if children and chooser.random() < 0.6:
            subprocess.run(["kill", "-9", str(chooser.choice(children))], check=False)
        else:
            stack.kill("stream")
            stack.start(
                "stream", "worker", "--stream", "--concurrency", "100", "-n", f"s{kills}@%h"
            )
        kills += 1
    return f"{kills} kill -9 of workers"


def _restart_redis(_: BenchStack, server: RedisServer, batch_id: str, done: threading.Event) -> str:
    wait_until(lambda: _mid_pipeline(batch_id, 0.3), 300, "jobs mid-pipeline")
    server.restart()
    return "Redis restarted (queues emptied)"


def _restart_postgres(_: BenchStack, __: RedisServer, batch_id: str, done: threading.Event) -> str:
    wait_until(lambda: _mid_pipeline(batch_id, 0.3), 300, "jobs mid-pipeline")
    cluster = next(Path("/etc/postgresql").iterdir()).name
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart", "-m", "fast"],
        check=True,
    )
    return "Postgres restarted"


def _restart_emulator(
    bench: BenchStack, _: RedisServer, batch_id: str, done: threading.Event
) -> str:
    wait_until(lambda: jobs_by_state(batch_id)["render"] >= 10, 300, "jobs rendering", every_s=0.1)
    _TALLY.update(_completed(bench))
    restart_emulator(bench.stack)
    return "emulator restarted mid-render"


def _none(_: BenchStack, __: RedisServer, batch_id: str, done: threading.Event) -> str:
    return "hostile profile"


def _variants(_: BenchStack, __: RedisServer, batch_id: str, done: threading.Event) -> str:
    return "backend variants (all at once)"


_TALLY: Counter[str] = Counter()


def _completed(bench: BenchStack) -> Counter[str]:
    stats = bench.stack.emulator.stats()
    return Counter(stats["renders"].get("completed_by_draft_hash", {}))


SCENARIOS = {
    "kill": Scenario("kill", "realistic", _kill_workers, 600),
    "redis": Scenario("redis", "realistic", _restart_redis, 600),
    "postgres": Scenario("postgres", "realistic", _restart_postgres, 600),
    "emulator": Scenario("emulator", "realistic", _restart_emulator, 600),
    "hostile": Scenario("hostile", "hostile", _none, 900),
    "variants": Scenario(
        "variants",
        "realistic",
        _variants,
        900,
        emulator_args=("--variant", "all", "--variant-rate", "0.3"),
        settings={"NEMO_REQUEST_TIMEOUT_S": "1"},
        profile_fields={"reply_delay_s": [120.0, 300.0]},  # 1.2-3 s of silence at x0.01
    ),
}


def _safe_final(batch_id: str, jobs: int) -> bool:
    try:
        return final_count(batch_id) >= jobs
    except Exception:  # the database restarting: ask again
        return False


def run(scenario: Scenario, jobs: int, redis_server: RedisServer, tmp: Path) -> Outcome:
    _TALLY.clear()
    with bench_stack(
        tmp / scenario.name,
        profile=scenario.profile,
        time_scale=0.01,
        settings={**SETTINGS, **scenario.settings},
        emulator_args=(*REALISTIC_ARGS, *scenario.emulator_args),
    ) as bench:
        if scenario.profile_fields:
            bench.stack.emulator.control("config", scenario.profile_fields)
        bench.start_workers(pipeline=3, stream=100)
        bench.make_tenant(inflight_limit=jobs)
        with bench.client() as client:
            image = bench.upload_image(client, "orange")
            started = time.monotonic()
            batch_id = bench.submit(client, identical_items(image, jobs, distinct_titles=True), "x")
        done = threading.Event()
        faults: list[str] = []
        injector = threading.Thread(
            target=lambda: faults.append(scenario.inject(bench, redis_server, batch_id, done))
        )
        injector.start()
        deadline = started + scenario.bound_s
        while time.monotonic() < deadline and not _safe_final(batch_id, jobs):
            time.sleep(1)
        seconds = time.monotonic() - started
        done.set()
        injector.join(timeout=60)
        wait_until(lambda: _safe_final(batch_id, 0), 60, "the database")
        counts = jobs_by_state(batch_id)
        _TALLY.update(_completed(bench))
        unedited = int(bench.stack.emulator.stats()["renders"].get("unedited_draft", 0))
        return Outcome(
            scenario=scenario.name,
            faults=faults[0] if faults else "fault not injected",
            submitted=jobs,
            succeeded=counts["succeeded"],
            failed=failures_by_code(batch_id),
            lost=jobs - sum(counts[s] for s in ("succeeded", "failed", "canceled")),
            duplicate_renders=sum(n - 1 for n in _TALLY.values() if n > 1),
            unedited_renders=unedited,
            seconds=seconds,
        )


def _print(outcomes: list[Outcome]) -> None:
    def by_code(o: Outcome) -> str:
        codes = ", ".join(f"{code} {n}" for code, n in sorted(o.failed.items()))
        return f"{sum(o.failed.values())}: {codes}" if o.failed else "0"

    width = max([len("failed (by code)"), *(len(by_code(o)) for o in outcomes)])
    header = f"{'faults':34} {'jobs':>5} {'ok':>5} {'failed (by code)':{width}}"
    print(f"\n{header} {'lost':>5} {'dup':>4} {'unedit':>6} {'final in':>9}")
    for o in outcomes:
        print(
            f"{o.faults[:34]:34} {o.submitted:>5} {o.succeeded:>5} {by_code(o):{width}} "
            f"{o.lost:>5} {o.duplicate_renders:>4} {o.unedited_renders:>6} {o.seconds:>8.0f}s"
        )
    bad = [o.scenario for o in outcomes if o.lost or o.duplicate_renders or o.unedited_renders]
    print(
        "\nlost, duplicate renders, renders of unedited drafts: "
        + ("0 in every row" if not bad else f"NOT 0 in {bad}")
    )
    for o in outcomes:
        if o.scenario == "variants":
            share = o.succeeded / o.submitted if o.submitted else 0.0
            print(f"backend variants: {share:.1%} succeeded (target >= 98%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    args = parser.parse_args()
    outcomes = []
    with private_redis() as server, tempfile.TemporaryDirectory(prefix="nemo-chaos-") as tmp:
        for name in args.only.split(","):
            print(f"scenario {name}: {args.jobs} jobs ...", flush=True)
            outcome = run(SCENARIOS[name], args.jobs, server, Path(tmp))
            print(f"   {outcome}", flush=True)
            outcomes.append(outcome)
    _print(outcomes)


if __name__ == "__main__":
    main()
