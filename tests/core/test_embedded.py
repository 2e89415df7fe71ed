"""The embedded PostgreSQL and Redis: one server per folder however many commands use it,
stopped when the last one ends (even by SIGKILL), reused after a crash, never started when a
URL is given."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
import redis

from core.embedded.keeper import read_state
from tests.support.embedded import servers_of as _servers_of
from tests.support.waiting import wait_for

REPO_ROOT = Path(__file__).resolve().parents[2]

HOLDER = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    from core.embedded import hold
    server = hold(sys.argv[1], Path(sys.argv[2]), linger_s=0.5)
    print(server.keeper_pid, server.url, flush=True)
    signal.pause()  # held until the test kills it
    """
)


def _holder(kind: str, folder: Path) -> tuple[subprocess.Popen[str], int, str]:
    """A process that holds the server, its keeper's pid and the server's URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, str(folder)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    keeper_pid, url = process.stdout.readline().split()
    return process, int(keeper_pid), url


@pytest.fixture()
def holders() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_commands_at_the_same_time_share_one_server_that_stops_after_the_last(
    kind: str, folder_root: Path, holders: list[subprocess.Popen[str]]
) -> None:
    folder = folder_root / kind
    first, first_keeper, first_url = _holder(kind, folder)
    second, second_keeper, second_url = _holder(kind, folder)
    holders += [first, second]

    assert (second_keeper, second_url) == (first_keeper, first_url)
    assert len(_servers_of(folder)) == 1
    if kind == "postgres":
        dsn = first_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    else:
        assert redis.Redis.from_url(first_url).ping()

    first.kill()  # SIGKILL: the kernel drops its hold; the server stays for the second
    first.wait()
    time.sleep(2)  # past the keeper's linger: a dropped hold would have stopped it by now
    assert psutil.pid_exists(first_keeper) and len(_servers_of(folder)) == 1

    second.send_signal(signal.SIGKILL)
    second.wait()
    wait_for(lambda: not _servers_of(folder), 30, "the server to stop after its last holder")
    wait_for(lambda: not psutil.pid_exists(first_keeper), 10, "the keeper to exit")
    assert read_state(folder) is None


@pytest.mark.parametrize("kind", ["postgres", "redis"])
def test_a_server_orphaned_by_a_killed_keeper_is_reused_never_doubled(
    kind: str, folder_root: Path, holders: list[subprocess.Popen[str]]
) -> None:
    folder = folder_root / kind
    first, keeper_pid, url = _holder(kind, folder)
    holders.append(first)
    (orphan,) = _servers_of(folder)
    os.kill(keeper_pid, signal.SIGKILL)
    first.kill()
    first.wait()

    second, new_keeper, new_url = _holder(kind, folder)
    holders.append(second)

    assert new_keeper != keeper_pid
    assert new_url == url
    assert [process.pid for process in _servers_of(folder)] == [orphan.pid]
    second.kill()
    second.wait()
    wait_for(lambda: not _servers_of(folder), 30, "the reused server to stop")


def test_a_given_url_starts_nothing(tmp_path: Path, settings: object) -> None:
    env = {**os.environ, "NEMO_VAR_DIR": str(tmp_path / "var")}
    assert "DATABASE_URL" in env and "REDIS_URL" in env  # the suite's own servers
    finished = subprocess.run(
        [sys.executable, "-m", "cli.main", "migrate"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert not (tmp_path / "var").exists()
