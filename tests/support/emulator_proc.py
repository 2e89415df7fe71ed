"""Start the emulator as a subprocess on a free loopback port, for any test suite.

proc = start_emulator(tmp_path, profile="ideal", time_scale=0.01)
try:
    httpx.get(proc.base_url + "/_emulator/health")
finally:
    proc.stop()
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from core.loopback import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
START_DEADLINE_S = 30.0
STOP_DEADLINE_S = 10.0


@dataclass
class EmulatorProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path

    def stats(self) -> dict[str, Any]:
        response = httpx.get(f"{self.base_url}/_emulator/stats", timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """POST to /_emulator/<path> (reset, config, credits, expire-tokens, lose-session/<id>)."""
        response = httpx.post(f"{self.base_url}/_emulator/{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        """SIGTERM the process group, SIGKILL it if it lingers."""
        if self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            self.process.wait(timeout=STOP_DEADLINE_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=STOP_DEADLINE_S)


def start_emulator(
    data_dir: Path,
    *,
    profile: str = "ideal",
    time_scale: float = 1.0,
    seed: int = 1,
    tokens: Iterable[str] = (),
    render_scale: float = 0.25,
    event_shape: str = "adk",
    extra_args: Iterable[str] = (),
) -> EmulatorProcess:
    """Launch `python -m emulator` and wait (with a deadline) until it answers."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = [
        sys.executable, "-m", "emulator",
        "--host", "127.0.0.1", "--port", str(port),
        "--profile", profile, "--time-scale", str(time_scale), "--seed", str(seed),
        "--data-dir", str(data_dir), "--render-scale", str(render_scale),
        "--event-shape", event_shape,
    ]  # fmt: skip
    for token in tokens:
        argv += ["--token", token]
    argv += list(extra_args)
    log_path = data_dir / "emulator.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    proc = EmulatorProcess(process, f"http://127.0.0.1:{port}", data_dir, log_path)
    deadline = time.monotonic() + START_DEADLINE_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"emulator exited with {process.returncode}:\n{proc.log()}")
        try:
            if httpx.get(f"{proc.base_url}/_emulator/health", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    proc.stop()
    raise TimeoutError(f"emulator did not answer within {START_DEADLINE_S} s:\n{proc.log()}")


@contextmanager
def running_emulator(data_dir: Path, **options: Any) -> Iterator[EmulatorProcess]:
    """start_emulator as a context manager (handy in fixtures)."""
    proc = start_emulator(data_dir, **options)
    try:
        yield proc
    finally:
        proc.stop()
