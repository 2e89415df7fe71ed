"""A whole nemo-batch stack for end-to-end tests: its own database, the emulator, Celery worker
processes (prefork and threads) and beat, all real processes talking over loopback."""

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import psycopg
import redis

from cli.demo_stack import ProcessSet
from tests.conftest import ADMIN_DSN, TEST_REDIS_URL, url_of_database
from tests.support.emulator_proc import EmulatorProcess, start_emulator

REGISTERED_TOKEN = "nmv_usr_e2e_registered_token"

FAST_SETTINGS = {
    "NEMO_POLL_INTERVAL_S": "0.5",
    "VERIFY_POLL_INTERVAL_S": "0.5",
    "VERIFY_TIMEOUT_S": "6",
    "CLAIM_INTERVAL_S": "0.5",
    "SWEEP_INTERVAL_S": "2",
    "HEARTBEAT_STALE_S": "8",
    "STEP_LEASE_S": "6",
    "RETRY_BASE_DELAY_S": "0.5",
    "RETRY_MAX_DELAY_S": "4",
    "CREDITS_CHECK_INTERVAL_S": "2",
    "NEMO_RATE_LIMIT_RPS": "35",
    "NEMO_RATE_LIMIT_BURST": "10",
    "NEMO_REQUEST_TIMEOUT_S": "20",
}


@contextmanager
def fresh_database() -> Iterator[str]:
    """A database of its own for one stack, so its workers see only its jobs."""
    from migrations.runner import upgrade

    name = f"nemo_e2e_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    url = url_of_database(name)
    try:
        upgrade(url)
        yield url
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class Stack(ProcessSet):
    """The demo's process set (`cli/demo_stack.py`) plus the emulator and test conveniences."""

    def __init__(self, env: dict[str, str], emulator: EmulatorProcess, logs: Path) -> None:
        super().__init__(env, logs)
        self.emulator = emulator

    def start_workers(self) -> None:
        node = uuid.uuid4().hex[:6]
        self.start("pipeline", "worker", "--concurrency", "3", "-n", f"pipeline-{node}@%h")
        self.start("stream", "worker", "--stream", "--concurrency", "40", "-n", f"stream-{node}@%h")
        self.start("webhooks", "worker", "--webhooks", "--concurrency", "2",
                   "-n", f"webhooks-{node}@%h")  # fmt: skip
        self.start("schedules", "worker", "--schedules", "-n", f"schedules-{node}@%h")
        self.start("beat", "beat", "--schedule", str(self.logs / "beat-schedule"))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill `name` for good: the supervisor no longer restarts it."""
        with self.lock:
            process = self.processes.pop(name)
            self.restart_at.pop(name, None)
        with suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def worker_children(self, name: str) -> list[int]:
        """Pids of the pool processes of a prefork worker."""
        parent = self.processes[name].pid
        out = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True)
        return [int(pid) for pid in out.stdout.split()]

    def note(self, line: str) -> None:
        """What the supervisor did, in the stack's own log."""
        with (self.logs / "supervisor.log").open("a") as log:
            log.write(f"{time.strftime('%H:%M:%S')} {line}\n")

    def supervisor_log(self) -> str:
        path = self.logs / "supervisor.log"
        return path.read_text() if path.exists() else ""

    def log(self, name: str) -> str:
        return self.log_tail(name, lines=60)

    def stop(self, grace_s: float = 15.0) -> None:
        super().stop(grace_s)
        self.emulator.stop()


@contextmanager
def running_stack(
    tmp_path: Path,
    *,
    profile: str = "ideal",
    time_scale: float = 0.01,
    seed: int = 7,
    settings: dict[str, str] | None = None,
    emulator_args: tuple[str, ...] = ("--rate-limit-rps", "40", "--rate-limit-burst", "20"),
    workers: bool = True,
    registered: bool = True,
) -> Iterator[Stack]:
    """Database, emulator, workers and beat; the in-process settings point at the same ones."""
    from core.db import reset_engine
    from core.settings import get_settings

    redis.Redis.from_url(TEST_REDIS_URL).flushdb()
    with fresh_database() as database_url:
        emulator = start_emulator(
            tmp_path / "emulator",
            profile=profile,
            time_scale=time_scale,
            seed=seed,
            tokens=(REGISTERED_TOKEN,),
            extra_args=emulator_args,
        )
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": TEST_REDIS_URL,
            "STORAGE_DIR": str(tmp_path / "storage"),
            "NEMO_API_BASE": emulator.base_url,
            **FAST_SETTINGS,
            **(settings or {}),
        }
        if registered:
            env["NEMO_TOKEN"] = REGISTERED_TOKEN
        else:
            env.pop("NEMO_TOKEN", None)
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(env)
        get_settings.cache_clear()
        reset_engine()
        logs = tmp_path / "logs"
        logs.mkdir(exist_ok=True)
        stack = Stack(env=env, emulator=emulator, logs=logs)
        try:
            if workers:
                stack.start_workers()
            stack.supervise_in_background(say=stack.note)
            yield stack
        finally:
            stack.stop()
            reset_engine()
            os.environ.clear()
            os.environ.update(saved)
            get_settings.cache_clear()
            redis.Redis.from_url(TEST_REDIS_URL).flushdb()
