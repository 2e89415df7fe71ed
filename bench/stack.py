"""The pieces every figure and chaos scenario shares: a private Redis, the e2e stack of
`tests/worker/stack.py` with workers sized for load, an API process, and measurements read
from /proc (CPU time, RSS) and from the database (jobs by state)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import redis

from core.embedded.redis_server import redis_binary
from core.loopback import free_port
from tests.support.waiting import wait_for as wait_until

REPO_ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

if TYPE_CHECKING:
    import httpx2

    from tests.worker.stack import Stack

    # The API over HTTP, or in process: starlette's TestClient is an httpx2.Client, not httpx's.
    ApiClient = httpx.Client | httpx2.Client


@dataclass
class RedisServer:
    """A Redis of the bench's own on a loopback port, restartable on the same port."""

    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        argv += ["--appendonly", "no", "--maxmemory-policy", "noeviction"]
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self._answers, 10, "the private Redis to answer", every_s=0.05)

    def _answers(self) -> bool:
        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1).ping())
        except redis.ConnectionError:
            return False

    def stop(self, graceful: bool = False) -> None:
        """SIGTERM (a clean shutdown) or SIGKILL (a crash)."""
        if self.process is not None:
            self.process.terminate() if graceful else self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def restart(self, down_s: float = 0.0, graceful: bool = False) -> None:
        """Stop it, wait `down_s`, start it again on the same port (with empty queues: it keeps
        nothing on disk)."""
        self.stop(graceful)
        time.sleep(down_s)
        self.start()


@contextmanager
def object_store(folder: Path) -> Iterator[dict[str, str]]:
    """The embedded S3-compatible store (SeaweedFS) in `folder`, deleted afterwards: the
    settings that point nemo-batch at it."""
    from core.embedded import hold, release
    from core.embedded.s3_server import EmbeddedS3

    server = hold("s3", folder, ephemeral=True, linger_s=0.5)
    try:
        yield EmbeddedS3(server.folder).environment()
    finally:
        release(server.folder, wait_s=15)


@contextmanager
def private_redis() -> Iterator[RedisServer]:
    """Start the bench's Redis and point the e2e harness at it (before it is imported)."""
    server = RedisServer(free_port())
    server.start()
    os.environ["TEST_REDIS_URL"] = server.url
    try:
        yield server
    finally:
        server.stop()


def profile_file(directory: Path, base: str, **fields: Any) -> str:
    """A profile JSON built on a shipped one with some fields replaced; its path."""
    data = json.loads((REPO_ROOT / "emulator" / "profiles" / f"{base}.json").read_text())
    data.update(fields, name=f"{base}-bench")
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{base}-bench.json"
    path.write_text(json.dumps(data))
    return str(path)


NO_FAULTS: dict[str, Any] = {
    "no_text_rate": 0.0,
    "cut_stream_rate": 0.0,
    "stream_error_rate": 0.0,
    "random_429_rate": 0.0,
    "rate_limit_rps": 0.0,
    "token_expiry_rate": 0.0,
    "session_loss_rate": 0.0,
    "render_failure_rate": 0.0,
}


@dataclass
class BenchStack:
    """The e2e stack plus an API process and the tenant's key."""

    stack: Stack
    api_url: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    tenant_id: uuid.UUID | None = None

    def start_workers(self, pipeline: int = 2, stream: int = 100) -> None:
        tag = uuid.uuid4().hex[:6]
        self.stack.start("pipeline", "worker", "--concurrency", str(pipeline), "-n", f"p-{tag}@%h")
        self.stack.start(
            "stream", "worker", "--stream", "--concurrency", str(stream), "-n", f"s-{tag}@%h"
        )
        self.stack.start("webhooks", "worker", "--webhooks", "--concurrency", "2",
                         "-n", f"w-{tag}@%h")  # fmt: skip
        self.stack.start("schedules", "worker", "--schedules", "-n", f"sc-{tag}@%h")
        self.stack.start("beat", "beat", "--schedule", str(self.stack.logs / "beat-schedule"))

    def start_host(self, host: str, storage_dir: Path, pipeline: int, stream: int) -> None:
        """A prefork and a stream worker as on another machine: a STORAGE_DIR and Celery
        hostnames of their own (`pipeline-HOST`, `stream-HOST`)."""
        tag, env = uuid.uuid4().hex[:6], {"STORAGE_DIR": str(storage_dir)}
        self.stack.start(
            f"pipeline-{host}", "worker", "--concurrency", str(pipeline),
            "-n", f"p-{host}-{tag}@%h", env=env,
        )  # fmt: skip
        self.stack.start(
            f"stream-{host}", "worker", "--stream", "--concurrency", str(stream),
            "-n", f"s-{host}-{tag}@%h", env=env,
        )  # fmt: skip

    def start_api(self) -> None:
        port = free_port()
        self.stack.start("api", "api", "--port", str(port))
        self.api_url = f"http://127.0.0.1:{port}"
        wait_until(self._api_answers, 60, "the API to answer", every_s=0.1)

    def _api_answers(self) -> bool:
        with suppress(httpx.HTTPError):
            return httpx.get(f"{self.api_url}/healthz", timeout=1).status_code == 200
        return False

    def make_tenant(self, inflight_limit: int, backend_token: str | None = None) -> None:
        from core.db import session_scope
        from core.repo.tenants import create_api_key, get_or_create_tenant

        with session_scope() as session:
            tenant = get_or_create_tenant(session, f"bench-{uuid.uuid4().hex[:8]}")
            tenant.inflight_limit = inflight_limit
            tenant.backend_token = backend_token
            key = create_api_key(session, tenant)
            self.tenant_id = tenant.id
        self.headers = {"Authorization": f"Bearer {key}"}

    def client(self) -> ApiClient:
        if self.api_url:
            return httpx.Client(base_url=self.api_url, headers=self.headers, timeout=120)
        from fastapi.testclient import TestClient

        from api.app import create_app

        client = TestClient(create_app())
        client.headers.update(self.headers)
        return client

    def upload_image(self, client: ApiClient, color: str) -> str:
        import io

        from PIL import Image

        buffer = io.BytesIO()
        Image.new("RGB", (64, 48), color).save(buffer, "PNG")
        answer = client.post("/v1/assets", files={"file": (f"{color}.png", buffer.getvalue())})
        answer.raise_for_status()
        return str(answer.json()["id"])

    def submit(self, client: ApiClient, items: list[dict[str, Any]], name: str) -> str:
        answer = client.post("/v1/batches", json={"name": name, "items": items})
        if answer.status_code != 201:
            raise RuntimeError(f"batch refused: {answer.status_code} {answer.text[:300]}")
        return str(answer.json()["id"])

    def pgids(self, *names: str) -> list[int]:
        return [self.stack.processes[n].pid for n in names if n in self.stack.processes]


def identical_items(
    image: str, count: int, *, distinct_titles: bool = False
) -> list[dict[str, Any]]:
    """Items whose drafts are identical (so renders come from the emulator's cache) unless
    `distinct_titles`, which gives every job its own draft (for counting duplicate renders)."""
    return [
        {
            "ref": f"sku-{n:05d}",
            "title": f"Product {n}" if distinct_titles else "Bench product",
            "description": "Sturdy, light and made to last.",
            "images": [image],
            "options": {"duration_s": 5, "aspect_ratio": "1:1"},
        }
        for n in range(count)
    ]


def jobs_by_state(batch_id: str) -> Counter[str]:
    from sqlalchemy import text

    from core.db import session_scope

    with session_scope() as session:
        rows = session.execute(
            text("SELECT state, count(*) FROM jobs WHERE batch_id = :b GROUP BY state"),
            {"b": batch_id},
        )
        return Counter({str(state): int(n) for state, n in rows})


def failures_by_code(batch_id: str) -> Counter[str]:
    from sqlalchemy import text

    from core.db import session_scope

    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT coalesce(error_code, '?'), count(*) FROM jobs"
                " WHERE batch_id = :b AND state = 'failed' GROUP BY 1"
            ),
            {"b": batch_id},
        )
        return Counter({str(code): int(n) for code, n in rows})


def failure_reasons(batch_id: str, most: int = 5) -> list[tuple[str, str, int]]:
    """The batch's most frequent (code, message, jobs) among its failed jobs, the words a user
    reads on each: what a chaos run prints beside its counts."""
    from sqlalchemy import text

    from core.db import session_scope

    with session_scope() as session:
        rows = session.execute(
            text(
                "SELECT coalesce(error_code, '?'), coalesce(error_message, ''), count(*)"
                " FROM jobs WHERE batch_id = :b AND state = 'failed'"
                " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT :most"
            ),
            {"b": batch_id, "most": most},
        )
        return [(str(code), str(message), int(n)) for code, message, n in rows]


FINAL_STATES = ("succeeded", "failed", "canceled")


def final_count(batch_id: str) -> int:
    counts = jobs_by_state(batch_id)
    return sum(counts[state] for state in FINAL_STATES)


def group_pids(pgid: int) -> list[int]:
    """Every live process in a process group (a worker and its pool children)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found


def cpu_seconds(pgids: list[int]) -> float:
    """User plus system CPU of every process in the groups, reaped children included."""
    total = 0
    for pgid in pgids:
        for pid in group_pids(pgid):
            with suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += sum(int(value) for value in fields[11:15])
    return total / CLOCK_TICKS


def rss_mb(pgids: list[int]) -> tuple[float, float, int]:
    """Resident memory of every process in the groups in MB, summed as RSS (pages shared by
    forked children counted in each) and as PSS (shared pages split), and how many processes."""
    rss_kb = pss_kb = count = 0
    for pgid in pgids:
        for pid in group_pids(pgid):
            with suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss_kb += int(line.split()[1])
                        count += 1
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                    if line.startswith("Pss:"):
                        pss_kb += int(line.split()[1])
    return rss_kb / 1024, pss_kb / 1024, count


def restart_emulator(stack: Stack, down_s: float = 1.0) -> None:
    """Kill the emulator and start it again on the same port and data dir, as a backend
    restart looks. The seed moves on: with the same seed the new process would hand out the
    session ids of the old one again, which no real backend does."""
    emulator = stack.emulator
    raw = Path(f"/proc/{emulator.process.pid}/cmdline").read_bytes().split(b"\0")[:-1]
    argv = [arg.decode() for arg in raw]
    seed = argv.index("--seed") + 1
    argv[seed] = str(int(argv[seed]) + 1)
    with suppress(ProcessLookupError):
        os.killpg(emulator.process.pid, signal.SIGKILL)
    emulator.process.wait(timeout=10)
    time.sleep(down_s)
    with emulator.log_path.open("ab") as log:
        emulator.process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def answers() -> bool:
        with suppress(httpx.HTTPError):
            return httpx.get(f"{emulator.base_url}/_emulator/health", timeout=1).status_code == 200
        return False

    wait_until(answers, 30, "the emulator to come back", every_s=0.05)


@contextmanager
def bench_stack(
    tmp_path: Path,
    *,
    profile: str,
    time_scale: float,
    settings: dict[str, str],
    emulator_args: tuple[str, ...] = (),
    registered: bool = True,
) -> Iterator[BenchStack]:
    """The e2e stack without its default workers; the caller starts what the figure needs."""
    from tests.worker.stack import running_stack

    with running_stack(
        tmp_path,
        profile=profile,
        time_scale=time_scale,
        settings=settings,
        emulator_args=emulator_args,
        workers=False,
        registered=registered,
    ) as stack:
        yield BenchStack(stack)
