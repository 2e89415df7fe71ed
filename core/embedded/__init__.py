"""PostgreSQL and Redis of nemo-batch's own, for a machine that has neither.

With `DATABASE_URL` or `REDIS_URL` unset, a command holds the embedded server (started by a
keeper process on first use, see `keeper.py`) and points its settings and its children at it.
An explicit URL always wins, and then that server is not started.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from core.embedded.keeper import (
    HOLDERS_LOCK,
    START_LOCK,
    keeper_alive,
    nobody_holds,
    open_lock,
    read_state,
)
from core.embedded.postgres_server import EmbeddedServerError

__all__ = [
    "EmbeddedServerError",
    "HeldServer",
    "held_servers",
    "hold",
    "release",
    "release_all",
    "use_embedded_services",
]

KEEPER_START_TIMEOUT_S = 120.0
ENV_OF = {"postgres": "DATABASE_URL", "redis": "REDIS_URL"}

_held: dict[Path, IO[str]] = {}
_servers: dict[Path, HeldServer] = {}
_keepers: list[subprocess.Popen[bytes]] = []  # kept so that they are not reaped as garbage


@dataclass(frozen=True)
class HeldServer:
    kind: str
    folder: Path
    url: str
    keeper_pid: int

    @property
    def log_path(self) -> Path:
        return self.folder / {"postgres": "postgres.log", "s3": "weed.log"}.get(
            self.kind, "redis.log"
        )


def var_dir() -> Path:
    """Where the embedded servers keep their data: ./var, or NEMO_VAR_DIR."""
    return Path(os.environ.get("NEMO_VAR_DIR") or "var").absolute()


def hold(kind: str, folder: Path, *, ephemeral: bool = False, linger_s: float = 2.0) -> HeldServer:
    """Hold the embedded `kind` server kept in `folder` for the rest of this process (or until
    `release`), starting its keeper unless one runs already."""
    folder = folder.absolute()
    folder.mkdir(parents=True, exist_ok=True)
    if folder not in _held:
        with open_lock(folder / START_LOCK) as start_lock:
            _lock_within(start_lock, KEEPER_START_TIMEOUT_S, f"the embedded {kind} in {folder}")
            if not keeper_alive(folder):
                _start_keeper(kind, folder, ephemeral=ephemeral, linger_s=linger_s)
            holder = open_lock(folder / HOLDERS_LOCK)
            fcntl.flock(holder, fcntl.LOCK_SH)
            _held[folder] = holder
    state = read_state(folder)
    if state is None:
        raise EmbeddedServerError(f"the embedded {kind} in {folder} stopped unexpectedly")
    server = HeldServer(kind, folder, str(state["url"]), int(str(state["keeper_pid"])))
    _servers[folder] = server
    return server


def held_servers() -> list[HeldServer]:
    """The embedded servers this process holds."""
    return [_servers[folder] for folder in _held if folder in _servers]


def release(folder: Path, *, wait_s: float = 0.0) -> None:
    """Stop holding the server; with `wait_s`, wait that long for it to stop unless another
    command still holds it."""
    folder = folder.absolute()
    holder = _held.pop(folder, None)
    _servers.pop(folder, None)
    if holder is None:
        return
    holder.close()
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and keeper_alive(folder) and nobody_holds(folder):
        time.sleep(0.1)


def release_all(*, wait_s: float = 0.0) -> None:
    """Stop holding every embedded server; wait (up to `wait_s` in all) for them to stop."""
    folders = list(_held)
    for folder in folders:
        release(folder)
    deadline = time.monotonic() + wait_s
    for folder in folders:
        while time.monotonic() < deadline and keeper_alive(folder) and nobody_holds(folder):
            time.sleep(0.1)


def use_embedded_services(*, ephemeral_root: Path | None = None) -> list[HeldServer]:
    """For each of DATABASE_URL and REDIS_URL that is not set (in the environment or .env),
    hold the embedded server and set the variable for this process and its children."""
    from core.settings import Settings, get_settings

    given = Settings().model_fields_set
    root = ephemeral_root or var_dir()
    held = []
    for kind, variable in ENV_OF.items():
        if variable.lower() in given:
            continue
        server = hold(kind, root / kind, ephemeral=ephemeral_root is not None)
        os.environ[variable] = server.url
        held.append(server)
    if held:
        get_settings.cache_clear()
    return held


def _start_keeper(kind: str, folder: Path, *, ephemeral: bool, linger_s: float) -> None:
    argv = [sys.executable, "-m", "core.embedded", kind, str(folder)]
    argv += ["--linger", str(linger_s)] + (["--ephemeral"] if ephemeral else [])
    log_path = folder / "keeper.log"
    with log_path.open("ab") as log:
        keeper = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C in the terminal reaches the command, not the keeper
            cwd=Path(__file__).resolve().parents[2],
        )
    _keepers.append(keeper)
    deadline = time.monotonic() + KEEPER_START_TIMEOUT_S
    while True:
        state = read_state(folder)
        if state is not None and state.get("keeper_pid") == keeper.pid:
            return
        if keeper.poll() is not None or time.monotonic() > deadline:
            text = log_path.read_text(errors="replace") if log_path.exists() else ""
            tail = text.strip().splitlines()[-8:]
            raise EmbeddedServerError(
                f"the embedded {kind} in {folder} did not start; {log_path} ends with:\n"
                + "\n".join(tail)
            )
        time.sleep(0.05)


def _lock_within(handle: IO[str], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"{what} is being started or stopped by another command for over "
                    f"{timeout_s:.0f} s; see its keeper.log"
                ) from None
            time.sleep(0.05)
