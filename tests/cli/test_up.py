"""`nemo-batch up` as a user on a bare machine runs it: no DATABASE_URL or REDIS_URL, so its
own PostgreSQL and Redis under ./var; killed outright, it leaves nothing that the next start
does not find and reuse; Ctrl-C stops every process and server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from core.loopback import free_port
from tests.support.embedded import servers_of
from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]
GIVEN = {"DATABASE_URL", "REDIS_URL", "NEMO_API_BASE", "NEMO_TOKEN", "STORAGE_DIR"}


class Up:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_port = free_port()
        env = {key: value for key, value in os.environ.items() if key not in GIVEN}
        self.output = root / f"up-{self.api_port}.out"
        with self.output.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "cli.main", "up", "--api-port", str(self.api_port),
                 "--flower-port", str(free_port()), "--time-scale", "0.01",
                 "--stream-concurrency", "4"],
                cwd=root, env=env | {"PYTHONPATH": str(REPO_ROOT)},
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_for(self.ready, 120, "nemo-batch up to print its table")

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def ready(self) -> bool:
        assert self.process.poll() is None, self.text()
        return "press Ctrl-C" in self.text()

    def api_key(self) -> str:
        line = next(line for line in self.text().splitlines() if line.startswith("API key for"))
        return line.rsplit(" ", 1)[1]

    def api_answers(self) -> bool:
        with suppress(httpx.HTTPError):
            url = f"http://127.0.0.1:{self.api_port}/healthz"
            return httpx.get(url, timeout=1).status_code == 200
        return False


def _stack_processes(root: Path) -> list[psutil.Process]:
    """Every nemo-batch process started for this folder's stack (they run with it as cwd)."""
    found = []
    for process in psutil.process_iter(["cmdline", "cwd"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["cwd"] == str(root) and "cli.main" in cmdline:
            found.append(process)
    return found


@pytest.mark.timeout(300)
def test_up_killed_outright_leaves_servers_the_next_start_reuses_and_ctrl_c_stops_all(
    folder_root: Path,
) -> None:
    var = folder_root / "var"
    first = Up(folder_root)
    assert first.api_answers()
    assert "PostgreSQL (embedded)" in first.text() and "Redis (embedded)" in first.text()
    key = first.api_key()
    assert len(servers_of(var / "postgres")) == 1 and len(servers_of(var / "redis")) == 1

    first.process.send_signal(signal.SIGKILL)
    first.process.wait()
    # Its processes go with it (the kernel signals them when their parent dies).
    wait_for(lambda: not first.api_answers(), 30, "the killed stack's API to stop")

    # Started at once: the old servers are still up (reused) or being stopped (then started
    # again on the same data); either way one copy of each.
    second = Up(folder_root)
    postgres_now = servers_of(var / "postgres")
    redis_now = servers_of(var / "redis")
    assert len(postgres_now) == 1 and len(redis_now) == 1, "never a second copy"
    # The same data: the key the first run made still opens the second run's API.
    answer = httpx.get(
        f"http://127.0.0.1:{second.api_port}/v1/batches",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text

    second.process.send_signal(signal.SIGINT)
    assert second.process.wait(timeout=90) == 0, second.text()[-3000:]
    assert "every process stopped" in second.text()
    wait_for(lambda: not servers_of(var / "postgres"), 30, "PostgreSQL to stop")
    wait_for(lambda: not servers_of(var / "redis"), 30, "Redis to stop")
    wait_for(lambda: not _stack_processes(folder_root), 30, "every stack process to exit")
