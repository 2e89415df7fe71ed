"""The processes `nemo-batch up`, the demo and the test stacks start: each in its own process
group, started again when it exits (with backoff, saying why), stopped whatever happens, and
taken down by the kernel if the command that started them is killed outright."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import httpx

STOP_GRACE_S = 10.0
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
CRASH_LOOP = (6, 120.0)  # this many exits within this many seconds: give up on the process
PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM it when the process that started it dies, so that a
    SIGKILL of `nemo-batch up` leaves no worker or API behind (Linux only; elsewhere a no-op)."""
    os.setsid()
    with suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ProcessSet:
    """`nemo-batch` subcommands started with one environment, logs under `logs`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.commands: dict[str, tuple[str, ...]] = {}
        self.env_of: dict[str, dict[str, str]] = {}
        """Settings of one process beside the set's (another host's STORAGE_DIR), kept for
        its restarts."""
        self.exits: dict[str, list[float]] = {}
        self.restart_at: dict[str, float] = {}
        self.stale_s = float(env.get("WORKER_STALE_S", "60"))
        self.lock = threading.RLock()  # supervision and deliberate kills, one at a time
        self._supervisor: threading.Thread | None = None
        self._stop_supervising = threading.Event()
        logs.mkdir(parents=True, exist_ok=True)

    def heartbeat_path(self, name: str) -> Path:
        return self.logs / f"{name}.heartbeat"

    def start(
        self, name: str, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `nemo-batch ARGS` as `name` (with `env` over the set's environment). Call it
        from the main thread or a thread that lives as long as the set: the kernel ends the
        child when that thread ends."""
        if env is not None:
            self.env_of[name] = env
        heartbeat = self.heartbeat_path(name)
        heartbeat.unlink(missing_ok=True)
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *args],
                env=self.env | self.env_of.get(name, {}) | {"NEMO_HEARTBEAT_FILE": str(heartbeat)},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.processes[name] = process
        self.commands[name] = args
        return process

    def supervise_in_background(self, say: Callable[[str], None], every_s: float = 0.5) -> None:
        """Supervise from a thread until `stop` (for stacks whose main thread is busy)."""

        def loop() -> None:
            while not self._stop_supervising.wait(every_s):
                if (reason := self.supervise(say)) is not None:
                    say(reason)
                    return

        self._stop_supervising.clear()
        self._supervisor = threading.Thread(target=loop, name="supervisor", daemon=True)
        self._supervisor.start()

    def supervise(self, say: Callable[[str], None] = print) -> str | None:
        """Start again every process that exited, after a backoff that grows with its recent
        exits, and kill one whose heartbeat went stale; call it every second or so. Returns
        why the stack cannot go on when a process exits in a loop (`CRASH_LOOP`), else None."""
        with self.lock:
            return self._supervise(say)

    def _supervise(self, say: Callable[[str], None]) -> str | None:
        now = time.monotonic()
        for name, process in list(self.processes.items()):
            if process.poll() is None:
                if (age := self._heartbeat_age(name)) is not None and age > self.stale_s:
                    say(
                        f"{name} has not reported healthy for {age:.0f} s (stopped or wedged); "
                        "killing it"
                    )
                    with suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
                else:
                    continue
            if name not in self.restart_at:
                count, window = CRASH_LOOP
                recent = [t for t in self.exits.get(name, []) if now - t < window] + [now]
                self.exits[name] = recent
                if len(recent) >= count:
                    return (
                        f"the {name} process exited {len(recent)} times in {window:.0f} s "
                        f"(last code {process.returncode}); its log "
                        f"({self.logs / (name + '.log')}) ends with:\n{self.log_tail(name)}"
                    )
                delay = RESTART_BACKOFF_S[min(len(recent) - 1, len(RESTART_BACKOFF_S) - 1)]
                self.restart_at[name] = now + delay
                say(
                    f"{name} exited with code {process.returncode}; starting it again in "
                    f"{delay:.1f} s (log: {self.logs / (name + '.log')})"
                )
            if now >= self.restart_at[name]:
                del self.restart_at[name]
                with suppress(ProcessLookupError):  # pool children left in its group
                    os.killpg(process.pid, signal.SIGKILL)
                self.start(name, *self.commands[name])
        return None

    def _heartbeat_age(self, name: str) -> float | None:
        """Seconds since the process last said it was healthy; None if it never said (only
        workers keep a heartbeat, from their first ready moment on)."""
        try:
            return time.time() - self.heartbeat_path(name).stat().st_mtime
        except OSError:
            return None

    def log_tail(self, name: str, lines: int = 15) -> str:
        path = self.logs / f"{name}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def dead(self) -> str | None:
        """Why the stack cannot go on: the first process that exited, with its log's tail."""
        for name, process in self.processes.items():
            if process.poll() is not None:
                return (
                    f"the {name} process exited with code {process.returncode}; its log "
                    f"({self.logs / (name + '.log')}) ends with:\n{self.log_tail(name)}"
                )
        return None

    def wait_http(self, name: str, url: str, timeout_s: float = 60.0) -> None:
        """Poll `url` until it answers 200, or fail naming the process and its log."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if (reason := self.dead()) is not None:
                raise RuntimeError(reason)
            with suppress(httpx.HTTPError):
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(
            f"the {name} did not answer at {url} within {timeout_s:.0f} s; its log ends "
            f"with:\n{self.log_tail(name)}"
        )

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """SIGTERM every process group, then SIGKILL the groups still there after `grace_s`."""
        self._stop_supervising.set()
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=30)
        for process in self.processes.values():
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for process in self.processes.values():
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        for process in self.processes.values():
            # Even a leader that exited may leave children (prefork pool, ffmpeg) in its group.
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.processes.clear()
        self.restart_at.clear()


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM, SIGHUP and SIGINT unwind like Ctrl-C, so every `finally` stops what it started.
    SIGINT too, explicitly: a command started in the background of a non-interactive shell
    inherits SIGINT ignored, and Ctrl-C (or `kill -INT`) must stop the stack all the same."""
    signals = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
    previous = {sig: signal.signal(sig, _interrupt) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
