"""The processes the demo starts, each in its own process group, and stops whatever happens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType

import httpx

STOP_GRACE_S = 10.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ProcessSet:
    """`nemo-batch` subcommands started with one environment, logs under `logs`."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", *args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes[name] = process
        return process

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


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


@contextmanager
def interrupt_on_sigterm() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` stops what it started."""
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
