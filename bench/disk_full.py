"""The "disk filled" row of the abuse table: a real full disk under a whole stack.

    .venv/bin/python -m bench.disk_full        # or: .venv/bin/python -m bench.chaos --only disk

Needs root: it runs itself again in a private mount namespace (`unshare -m`, so nothing is
mounted where anyone else sees it) and mounts a small tmpfs as the stack's STORAGE_DIR (the
objects and every temporary file; PostgreSQL, Redis and the emulator keep their data
elsewhere). A ballast file takes most of it; one tenant uploads distinct images until the
disk is full (507 answers from then on); a batch whose jobs must store their videos on the full
disk runs; then the ballast is deleted (an operator freeing space) and the jobs go on.

What it checks: every upload is 201 or 507 (never 500); after the first 507 no temporary file
is left and every asset row's file is whole (its sha256); no job fails or is lost while the
disk is full, each waits in `download` with the reason on the job; once space is freed every
job succeeds, each video whole. The last line printed is the row as JSON (`bench.abuse`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from bench.stack import bench_stack, jobs_by_state, private_redis, wait_until

DISK_MB = 24
BALLAST_MB = 14
JOBS = 8
SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "STORAGE_WAIT_INTERVAL_S": "2",
    "STORAGE_WAIT_MAX_S": "900",
    "WRITE_RATE_PER_MINUTE": "100000",
    "WRITE_BURST": "100000",
}


PRIVATE = "NEMO_BENCH_PRIVATE_MOUNTS"
"""Set by `run_isolated` for the child it starts under `unshare -m`."""


def private_namespace() -> bool:
    return os.environ.get(PRIVATE) == "1"


def noise_png(size: int = 256) -> bytes:
    """A PNG that does not compress (random pixels), about 200 KB."""
    import io

    from PIL import Image

    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def fill(disk: Path, megabytes: int) -> Path:
    ballast = disk / "ballast"
    with ballast.open("wb") as handle:
        for _ in range(megabytes):
            handle.write(b"\0" * (1 << 20))
    return ballast


def temporary_files(disk: Path) -> list[Path]:
    return [path for path in (disk / "tmp").glob("*") if path.is_file()]


def whole_assets(disk: Path) -> tuple[int, int]:
    """(asset rows, rows whose file's sha256 is the row's)."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import Asset

    with session_scope() as session:
        rows = session.execute(select(Asset.sha256, Asset.path)).all()
    whole = 0
    for sha256, key in rows:
        path = disk / key
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == sha256:
            whole += 1
    return len(rows), whole


def job_rows(batch_id: str) -> list[tuple[str, str | None, str | None, dict[str, Any] | None]]:
    from sqlalchemy import text

    from core.db import session_scope

    with session_scope() as session:
        rows = session.execute(
            text("SELECT state, error_code, error_message, output FROM jobs WHERE batch_id = :b"),
            {"b": batch_id},
        )
        return [(str(state), code, message, output) for state, code, message, output in rows]


def run_row(tmp: Path) -> dict[str, Any]:
    disk = tmp / "disk"
    disk.mkdir(parents=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk)], check=True
    )
    try:
        return _with_disk(tmp, disk)
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _with_disk(tmp: Path, disk: Path) -> dict[str, Any]:
    settings = {**SETTINGS, "STORAGE_DIR": str(disk)}
    with bench_stack(
        tmp / "stack",
        profile="ideal",
        time_scale=0.01,
        settings=settings,
        emulator_args=("--render-scale", "0.05"),
    ) as bench:
        bench.start_workers(pipeline=2, stream=10)
        bench.start_api()
        bench.make_tenant(inflight_limit=50)
        ballast = fill(disk, BALLAST_MB)
        answers: Counter[str] = Counter()
        first_507 = ""
        assets: list[str] = []
        with httpx.Client(base_url=bench.api_url, headers=bench.headers, timeout=60) as client:
            for _ in range(200):
                answer = client.post(
                    "/v1/assets", files={"file": ("noise.png", noise_png(), "image/png")}
                )
                answers[str(answer.status_code)] += 1
                if answer.status_code == 201:
                    assets.append(answer.json()["id"])
                elif answer.status_code == 507:
                    first_507 = first_507 or answer.json()["error"]["message"]
                    if answers["507"] >= 3:
                        break
            left_behind = len(temporary_files(disk))
            rows, whole = whole_assets(disk)
            free_kb = shutil.disk_usage(disk).free // 1024

            items = [
                {
                    "ref": f"full-{n}",
                    "title": f"Full disk product {n}",
                    "images": [assets[0]],
                    "options": {"duration_s": 5},
                }
                for n in range(JOBS)
            ]
            answer = client.post("/v1/batches", json={"name": "full disk", "items": items})
            batch_status = answer.status_code
            batch_id = answer.json().get("id", "")
        waited: list[str] = []
        if batch_status == 201:

            def all_waiting() -> bool:
                states = job_rows(batch_id)
                return all(state == "download" and message for state, _, message, _ in states)

            started = time.monotonic()
            wait_until(all_waiting, 300, "every job to wait for room in download", every_s=0.5)
            held_s = time.monotonic() - started
            time.sleep(10)  # a few more storage checks on the full disk
            waited = [message or "" for _, _, message, _ in job_rows(batch_id)]
            during = jobs_by_state(batch_id)
            ballast.unlink()  # the operator frees space
            freed = time.monotonic()
            wait_until(
                lambda: (
                    sum(jobs_by_state(batch_id).values())
                    == sum(jobs_by_state(batch_id)[s] for s in ("succeeded", "failed", "canceled"))
                ),
                300,
                "every job to be final",
                every_s=0.5,
            )
            after_s = time.monotonic() - freed
            final = job_rows(batch_id)
        else:
            held_s = after_s = 0.0
            during, final = Counter(), []
        whole_videos = sum(
            1
            for state, _, _, output in final
            if state == "succeeded"
            and output
            and (disk / output["path"]).is_file()
            and hashlib.sha256((disk / output["path"]).read_bytes()).hexdigest() == output["sha256"]
        )
        states = Counter(state for state, _, _, _ in final)
    uploads = ", ".join(f"{n} x {status}" for status, n in sorted(answers.items()))
    sent = (
        f"a {DISK_MB} MB disk as STORAGE_DIR ({BALLAST_MB} MB ballast): ~200 KB images until "
        f"full, then a batch of {JOBS} jobs whose videos go on the full disk; ballast freed"
    )
    held = (
        f"uploads {uploads} ('{first_507[:60]}...'); {left_behind} temporary files left, "
        f"{whole}/{rows} asset files whole, {free_kb} KB free; batch {batch_status}: "
        f"{during.get('download', 0)}/{JOBS} waited in download with the reason on the job "
        f"(all within {held_s:.0f} s, '{(waited[0] if waited else '')[:70]}...'), "
        f"{during.get('failed', 0)} failed while full; space freed: {states.get('succeeded', 0)} "
        f"succeeded, {states.get('failed', 0)} failed, "
        f"{JOBS - sum(states.values())} lost, in {after_s:.0f} s; {whole_videos} videos whole"
    )
    ok = (
        set(answers) <= {"201", "507"}
        and answers["507"] >= 1
        and left_behind == 0
        and rows == whole == len(assets)
        and batch_status == 201
        and during.get("download", 0) == JOBS
        and states.get("succeeded", 0) == JOBS
        and whole_videos == JOBS
    )
    return {"sent": sent, "held": held, "ok": ok}


def run_isolated() -> dict[str, Any]:
    """The row in a private mount namespace of its own (a child process); its JSON line."""
    if os.geteuid() != 0 or not shutil.which("unshare"):
        return {"sent": "the disk filled", "held": "not run: needs root and unshare", "ok": False}
    argv = ["unshare", "-m", "--propagation", "private", sys.executable, "-m", "bench.disk_full"]
    env = {**os.environ, PRIVATE: "1"}
    done = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        tail = (done.stderr or done.stdout)[-2000:]
        return {"sent": "the disk filled", "held": f"the row crashed: {tail}", "ok": False}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    if not private_namespace():
        print(json.dumps(run_isolated()))
        return
    with (
        private_redis(),
        tempfile.TemporaryDirectory(prefix=f"nemo-disk-{uuid.uuid4().hex[:6]}-") as tmp,
    ):
        result = run_row(Path(tmp))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
