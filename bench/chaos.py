"""`make chaos`: faults injected into a running batch, and a table of what became of its jobs.

    .venv/bin/python -m bench.chaos [--jobs 200] [--repeat N]
        [--only kill,redis,redis-kill,redis-down,postgres,emulator,hostile,variants,scale-out,
                abuse,disk]

Each scenario runs its own stack against the emulator on loopback with at least 200 jobs, each
job with a draft of its own, so that a render paid twice shows up as two completed renders of
one draft in the emulator's stats (tallied across emulator restarts, since stats live in
memory). Lost = not final within the bound. The Redis restarted is the bench's private one and
the PostgreSQL restarted is the suite's own embedded server: never a server of the machine's.
Every stack is supervised as `nemo-batch up` supervises its processes. The kill and Redis rows
run 3 times by default (`--repeat N` sets every row's count): a fault that shows in one run of
five is a fault, so each row prints its worst run beside its median.
`variants` serves every backend variant of emulator/variants.py at once, with silences longer
than the workers' request timeout, and counts renders of drafts the agent did not edit.
`scale-out` runs two worker sets as two hosts would (each a prefork and a stream worker with a
STORAGE_DIR and Celery hostnames of its own) on one S3-compatible store (the embedded
SeaweedFS), SIGKILLs one whole set mid-batch for good, and counts the files left on the
surviving host's disk (0: it reads and writes only the store).
`abuse` (bench/abuse.py) prints a table of its own: what a hostile tenant sent, what held.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from bench import abuse
from bench.stack import (
    BenchStack,
    RedisServer,
    bench_stack,
    failure_reasons,
    failures_by_code,
    final_count,
    identical_items,
    jobs_by_state,
    object_store,
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
    repeat: int = 1
    emulator_args: tuple[str, ...] = ()
    settings: dict[str, str] = field(default_factory=dict)
    profile_fields: dict[str, object] = field(default_factory=dict)
    hosts: int = 1
    """Above 1: that many worker sets, each as on a host of its own, on one object store."""


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
    server.restart(graceful=True)
    return "Redis restarted (queues emptied)"


def _kill_redis(_: BenchStack, server: RedisServer, batch_id: str, done: threading.Event) -> str:
    wait_until(lambda: _mid_pipeline(batch_id, 0.3), 300, "jobs mid-pipeline")
    server.restart(down_s=0.5)
    return "Redis SIGKILLed, back in 0.5 s"


def _redis_down(_: BenchStack, server: RedisServer, batch_id: str, done: threading.Event) -> str:
    wait_until(lambda: _mid_pipeline(batch_id, 0.3), 300, "jobs mid-pipeline")
    server.restart(down_s=30)
    return "Redis down for 30 s"


def _restart_postgres(_: BenchStack, __: RedisServer, batch_id: str, done: threading.Event) -> str:
    from tests.conftest import EMBEDDED_POSTGRES

    if EMBEDDED_POSTGRES is None:
        raise RuntimeError(
            "the postgres row restarts the bench's own embedded PostgreSQL, never a server it "
            "was given: unset TEST_ADMIN_DSN to run it"
        )
    wait_until(lambda: _mid_pipeline(batch_id, 0.3), 300, "jobs mid-pipeline")
    EMBEDDED_POSTGRES.stop("fast")
    EMBEDDED_POSTGRES.start()
    return "Postgres restarted"


def _restart_emulator(
    bench: BenchStack, _: RedisServer, batch_id: str, done: threading.Event
) -> str:
    wait_until(lambda: jobs_by_state(batch_id)["render"] >= 10, 300, "jobs rendering", every_s=0.1)
    _TALLY.update(_completed(bench))
    restart_emulator(bench.stack)
    return "emulator restarted mid-render"


def _kill_a_host(bench: BenchStack, _: RedisServer, batch_id: str, done: threading.Event) -> str:
    """SIGKILL every worker of host b for good (a machine lost): the other host carries on."""
    wait_until(lambda: _mid_pipeline(batch_id, 0.3), 300, "jobs mid-pipeline")
    bench.stack.kill("stream-b")
    bench.stack.kill("pipeline-b")
    done.wait()
    left = [p for p in (bench.stack.logs.parent / "host-a").rglob("*") if p.is_file()]
    return f"host b killed; {len(left)} files on a"


def _none(_: BenchStack, __: RedisServer, batch_id: str, done: threading.Event) -> str:
    return "hostile profile"


def _variants(_: BenchStack, __: RedisServer, batch_id: str, done: threading.Event) -> str:
    return "backend variants (all at once)"


_TALLY: Counter[str] = Counter()


def _completed(bench: BenchStack) -> Counter[str]:
    stats = bench.stack.emulator.stats()
    return Counter(stats["renders"].get("completed_by_draft_hash", {}))


SCENARIOS = {
    "kill": Scenario("kill", "realistic", _kill_workers, 600, repeat=3),
    "redis": Scenario("redis", "realistic", _restart_redis, 600, repeat=3),
    "redis-kill": Scenario("redis-kill", "realistic", _kill_redis, 600, repeat=3),
    "redis-down": Scenario("redis-down", "realistic", _redis_down, 600, repeat=3),
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
    "scale-out": Scenario(
        "scale-out", "realistic", _kill_a_host, 600, settings={"HEARTBEAT_STALE_S": "8"}, hosts=2
    ),
}


def _safe_final(batch_id: str, jobs: int) -> bool:
    try:
        return final_count(batch_id) >= jobs
    except Exception:  # the database restarting: ask again
        return False


def run(scenario: Scenario, jobs: int, redis_server: RedisServer, tmp: Path) -> Outcome:
    with ExitStack() as context:
        storage = {}
        if scenario.hosts > 1:
            storage = context.enter_context(object_store(tmp / "s3"))
        return _run(scenario, jobs, redis_server, tmp, storage)


def _run(
    scenario: Scenario, jobs: int, redis_server: RedisServer, tmp: Path, storage: dict[str, str]
) -> Outcome:
    _TALLY.clear()
    with bench_stack(
        tmp / scenario.name,
        profile=scenario.profile,
        time_scale=0.01,
        settings={**SETTINGS, **scenario.settings, **storage},
        emulator_args=(*REALISTIC_ARGS, *scenario.emulator_args),
    ) as bench:
        if scenario.profile_fields:
            bench.stack.emulator.control("config", scenario.profile_fields)
        if scenario.hosts > 1:
            for host in "abcdefgh"[: scenario.hosts]:
                bench.start_host(host, tmp / scenario.name / f"host-{host}", pipeline=2, stream=50)
            bench.stack.start("beat", "beat", "--schedule", str(bench.stack.logs / "beat-sched"))
        else:
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
        for code, message, count in failure_reasons(batch_id):
            print(f"   failed, {count} jobs, {code}: {message}", flush=True)
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
    """One line per row: its runs, jobs, the worst run's losses, median and worst times."""

    def by_code(runs: list[Outcome]) -> str:
        failed: Counter[str] = Counter()
        for run_ in runs:
            failed.update(run_.failed)
        codes = ", ".join(f"{code} {n}" for code, n in sorted(failed.items()))
        return f"{sum(failed.values())}: {codes}" if failed else "0"

    rows: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        rows.setdefault(outcome.scenario, []).append(outcome)
    width = max([len("failed (all runs)"), *(len(by_code(runs)) for runs in rows.values())])
    print(
        f"\n{'faults':34} {'runs':>4} {'jobs':>6} {'ok':>6} {'failed (all runs)':{width}} "
        f"{'lost':>5} {'dup':>4} {'unedit':>6} {'median':>7} {'worst':>7}"
    )
    for runs in rows.values():
        times = [run_.seconds for run_ in runs]
        print(
            f"{runs[0].faults[:34]:34} {len(runs):>4} {sum(r.submitted for r in runs):>6} "
            f"{sum(r.succeeded for r in runs):>6} {by_code(runs):{width}} "
            f"{sum(r.lost for r in runs):>5} {sum(r.duplicate_renders for r in runs):>4} "
            f"{sum(r.unedited_renders for r in runs):>6} "
            f"{statistics.median(times):>6.0f}s {max(times):>6.0f}s"
        )
    bad = [o.scenario for o in outcomes if o.lost or o.duplicate_renders or o.unedited_renders]
    print(
        "\nlost, duplicate renders, renders of unedited drafts: "
        + ("0 in every run of every row" if not bad else f"NOT 0 in {sorted(set(bad))}")
    )
    variants = [o for o in outcomes if o.scenario == "variants"]
    if variants:
        share = sum(o.succeeded for o in variants) / sum(o.submitted for o in variants)
        print(f"backend variants: {share:.1%} succeeded (target >= 98%)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=None, help="Runs of every row.")
    parser.add_argument("--only", default=",".join([*SCENARIOS, "abuse"]))
    args = parser.parse_args()
    outcomes = []
    names = args.only.split(",")
    abuse_rows = []
    with private_redis() as server, tempfile.TemporaryDirectory(prefix="nemo-chaos-") as tmp:
        if "abuse" in names:
            names.remove("abuse")
            print("abuse: one tenant's hostile requests against a whole stack ...", flush=True)
            abuse_rows = abuse.run(Path(tmp))
        if "disk" in names:  # the abuse table's disk-full row alone
            names.remove("disk")
            print("abuse: the disk filled under a whole stack ...", flush=True)
            abuse_rows.append(abuse.disk_filled())
        for name in names:
            scenario = SCENARIOS[name]
            runs = args.repeat or scenario.repeat
            for attempt in range(1, runs + 1):
                print(f"scenario {name}, run {attempt} of {runs}: {args.jobs} jobs ...", flush=True)
                outcome = run(scenario, args.jobs, server, Path(tmp) / f"{name}-{attempt}")
                print(f"   {outcome}", flush=True)
                outcomes.append(outcome)
    if outcomes:
        _print(outcomes)
    if abuse_rows:
        abuse.print_table(abuse_rows)


if __name__ == "__main__":
    main()
