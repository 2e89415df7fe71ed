"""One keeper process per embedded server: it starts the server, restarts it if it dies, and
stops it once no command holds it any more.

A command holds a server with a shared flock on the server folder's `.holders.lock`; the kernel
drops that lock however the command ends, SIGKILL included, so a crashed command never leaves a
server listening for long. A second command finds the keeper alive (its exclusive flock on
`.keeper.lock`) and reuses its server; `.start.lock` makes checking, starting and stopping one
step at a time, so two commands started together never start two servers.

    python -m core.embedded postgres var/postgres [--ephemeral] [--linger 2]
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import time
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import IO, Protocol

from core.embedded.postgres_server import EmbeddedPostgres
from core.embedded.redis_server import EmbeddedRedis

log = logging.getLogger("nemo.embedded")

STATE_FILE = "keeper.json"
START_LOCK = ".start.lock"
KEEPER_LOCK = ".keeper.lock"
HOLDERS_LOCK = ".holders.lock"
CHECK_EVERY_S = 0.5
DATABASE = "nemo_batch"


class Server(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def pid(self) -> int | None: ...


def make_server(kind: str, folder: Path, *, durable: bool) -> tuple[Server, str]:
    """The server of `kind` kept in `folder`, and the URL a client uses for it."""
    if kind == "postgres":
        postgres = EmbeddedPostgres(folder / "data", durable=durable)
        return postgres, postgres.url(DATABASE)
    if kind == "redis":
        server = EmbeddedRedis(folder, durable=durable)
        return server, server.url(0)
    raise ValueError(f"unknown embedded server {kind!r}: postgres or redis")


def open_lock(path: Path) -> IO[str]:
    return path.open("a")


def try_lock(handle: IO[str], mode: int) -> bool:
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def nobody_holds(folder: Path) -> bool:
    """True when no command holds the server (an exclusive lock on the holders file is free)."""
    if not folder.exists():  # an ephemeral server's keeper deleted it on the way out
        return True
    with open_lock(folder / HOLDERS_LOCK) as handle:
        if try_lock(handle, fcntl.LOCK_EX):
            fcntl.flock(handle, fcntl.LOCK_UN)
            return True
        return False


def keeper_alive(folder: Path) -> bool:
    if not folder.exists():
        return False
    with open_lock(folder / KEEPER_LOCK) as handle:
        if try_lock(handle, fcntl.LOCK_EX):
            fcntl.flock(handle, fcntl.LOCK_UN)
            return False
        return True


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: FrameType | None) -> None:
    raise _Stop(signal.Signals(signum).name)


def run(kind: str, folder: Path, *, ephemeral: bool, linger_s: float) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    keeper_lock = open_lock(folder / KEEPER_LOCK)
    if not try_lock(keeper_lock, fcntl.LOCK_EX):
        log.info("another keeper already runs the %s in %s", kind, folder)
        return 0
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, _raise_stop)
    server, url = make_server(kind, folder, durable=not ephemeral)
    state = folder / STATE_FILE
    ready = False
    start_lock: IO[str] | None = None
    try:
        server.start()
        if isinstance(server, EmbeddedPostgres):
            server.ensure_database(DATABASE)
        if isinstance(server, EmbeddedRedis):
            # Its old port may be taken (a connection of the last run in TIME_WAIT): then start()
            # moved to another one, and the URL made before it would point at nothing.
            url = server.url(0)
        _write_json(state, {"kind": kind, "keeper_pid": os.getpid(), "url": url})
        ready = True
        log.info("%s ready for nemo-batch at %s (data in %s)", kind, url, folder)
        start_lock = _watch(kind, folder, server, linger_s)
    except _Stop as stop:
        log.info("%s: %s received, stopping", kind, stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop short
        if start_lock is None:
            start_lock = open_lock(folder / START_LOCK)
            # Before it was ready, the command that started it holds this lock, waiting.
            if ready:
                fcntl.flock(start_lock, fcntl.LOCK_EX)
        with start_lock:
            state.unlink(missing_ok=True)
            server.stop()
            log.info("%s stopped", kind)
            keeper_lock.close()
            if ephemeral and ready:  # kept after a failed start: its logs say why
                shutil.rmtree(folder, ignore_errors=True)
    return 0


def _watch(kind: str, folder: Path, server: Server, linger_s: float) -> IO[str]:
    """Restart the server when it dies; once nobody has held it for `linger_s`, return the start
    lock, taken: no command can take the server between this decision and its stop."""
    idle_since: float | None = None
    restart_delay = 0.5
    while True:
        time.sleep(CHECK_EVERY_S)
        if server.pid() is None:
            log.warning("the embedded %s exited; starting it again in %.1f s", kind, restart_delay)
            time.sleep(restart_delay)
            try:
                server.start()
                restart_delay = 0.5
            except Exception as error:  # a failed restart is retried, with a longer wait
                log.error("restarting the embedded %s failed: %s", kind, error)
                restart_delay = min(restart_delay * 2, 30.0)
            continue
        if not _idle(folder):
            idle_since = None
            continue
        idle_since = idle_since or time.monotonic()
        if time.monotonic() - idle_since >= linger_s:
            start_lock = open_lock(folder / START_LOCK)
            fcntl.flock(start_lock, fcntl.LOCK_EX)
            if nobody_holds(folder):
                log.info("no nemo-batch command holds the %s any more", kind)
                return start_lock
            start_lock.close()  # taken in the meantime: keep it
            idle_since = None


def _idle(folder: Path) -> bool:
    """Nobody holds the server and nobody is in the middle of taking it."""
    with open_lock(folder / START_LOCK) as start_lock:
        if not try_lock(start_lock, fcntl.LOCK_EX):
            return False
        try:
            return nobody_holds(folder)
        finally:
            fcntl.flock(start_lock, fcntl.LOCK_UN)


def _write_json(path: Path, data: dict[str, object]) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(data))
    os.replace(temporary, path)


def read_state(folder: Path) -> dict[str, object] | None:
    with suppress(OSError, ValueError):
        data = json.loads((folder / STATE_FILE).read_text())
        if isinstance(data, dict):
            return data
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Keep one embedded server for nemo-batch.")
    parser.add_argument("kind", choices=["postgres", "redis"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--ephemeral", action="store_true", help="Delete the folder at the end.")
    parser.add_argument("--linger", type=float, default=2.0, help="Seconds kept after last use.")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout
    )
    return run(args.kind, args.folder.absolute(), ephemeral=args.ephemeral, linger_s=args.linger)
