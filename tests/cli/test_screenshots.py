"""What an operator sees: headless Chromium on Flower (behind basic auth) and on the API's /docs.

Flower runs as `nemo-batch flower` next to a real Celery worker, so the pipeline tasks are
registered and the ones sent here show up by name with their job ids.
"""

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from celery import Celery

from core.loopback import free_port
from tests.cli.conftest import ServedApi
from tests.conftest import TEST_REDIS_URL
from tests.support.waiting import wait_for
from tests.worker.stack import fresh_database

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a browser: install Debian's chromium package (apt-get install chromium)",
)

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = TEST_REDIS_URL.rsplit("/", 1)[0] + "/10"  # its own db: other suites flush 15
STEP_TASKS = ("worker.token", "worker.session", "worker.upload", "worker.download")
SECRET_TOKEN = "nmv_usr_screenshot_secret_token"


def chromium(tmp_path: Path, url: str, *extra: str, timeout_s: float = 90) -> str:
    """Run headless Chromium once; its stdout (the DOM with --dump-dom)."""
    assert CHROMIUM is not None
    profile = tmp_path / f"chromium-{uuid.uuid4().hex[:6]}"
    finished = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
         "--window-size=1400,1000", "--virtual-time-budget=5000", *extra, url],
        capture_output=True, text=True, timeout=timeout_s,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished.stdout


def screenshot(tmp_path: Path, url: str, name: str) -> Path:
    path = tmp_path / name
    chromium(tmp_path, url, f"--screenshot={path}")
    assert path.is_file() and path.stat().st_size > 20_000, "the page rendered next to nothing"
    kept = os.environ.get("SCREENSHOT_DIR")
    if kept:
        shutil.copy(path, Path(kept) / name)
    return path


@dataclass
class Flower:
    url: str
    auth: tuple[str, str]
    worker_log: Path

    def api(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", auth=self.auth, timeout=10)
        response.raise_for_status()
        return response.json()


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "cli.main", *args],
            cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip


@pytest.fixture()
def flower(tmp_path: Path, settings: Any) -> Iterator[Flower]:
    """`nemo-batch flower` and one prefork worker on a Redis db and a database of their own
    (so the worker runs no other test's queued jobs)."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    auth = ("operator", f"pw-{uuid.uuid4().hex[:10]}")
    with fresh_database() as database_url:
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "FLOWER_USER": auth[0],
            "FLOWER_PASSWORD": auth[1],
            "NEMO_TOKEN": SECRET_TOKEN,
            "NEMO_API_BASE": "http://127.0.0.1:9",
        }
        port = free_port()
        node = f"shots-{uuid.uuid4().hex[:6]}@%h"
        processes = [
            _start(["flower", "--port", str(port)], env, tmp_path / "flower.log"),
            _start(["worker", "--concurrency", "1", "-n", node], env, tmp_path / "worker.log"),
        ]
        try:
            handle = Flower(f"http://127.0.0.1:{port}", auth, tmp_path / "worker.log")

            def workers_seen() -> bool:
                try:
                    return bool(handle.api("/api/workers?refresh=1"))
                except httpx.HTTPError:
                    return False

            wait_for(workers_seen, 60, "Flower to see the worker")
            # Workers send task events only while asked to; Flower asks every few seconds.
            wait_for(
                lambda: "enabled by remote" in handle.worker_log.read_text(errors="replace"),
                60,
                "Flower to switch the worker's task events on",
            )
            yield handle
        finally:
            for process in processes:
                os.killpg(process.pid, 15)
            for process in processes:
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, 9)
            redis.Redis.from_url(REDIS_URL).flushdb()


def test_flower_shows_each_pipeline_step_by_name_with_job_ids_and_no_tokens(
    flower: Flower, tmp_path: Path
) -> None:
    sender = Celery("screenshot-sender", broker=REDIS_URL, set_as_current=False)
    job_ids = {name: str(uuid.uuid4()) for name in STEP_TASKS}
    for name, job_id in job_ids.items():
        sender.send_task(name, args=[job_id], queue="pipeline")
    sender.send_task("worker.dispatch", kwargs={"reason": "screenshot"}, queue="pipeline")

    def all_tasks_seen() -> dict[str, Any] | None:
        tasks: dict[str, Any] = flower.api("/api/tasks")
        names = {task["name"] for task in tasks.values()}
        return tasks if {*STEP_TASKS, "worker.dispatch"} <= names else None

    tasks = wait_for(all_tasks_seen, 60, "the tasks to reach Flower")
    # The worker's dispatch may start other queued jobs of the test database too: also job ids.
    shown = {(task["name"], task["args"]) for task in tasks.values()}
    for name, job_id in job_ids.items():
        assert (name, f"['{job_id}']") in shown, shown
    assert SECRET_TOKEN not in str(tasks)
    assert httpx.get(f"{flower.url}/tasks", timeout=10).status_code == 401, "basic auth is on"

    user, password = flower.auth
    page = flower.url.replace("http://", f"http://{user}:{password}@") + "/tasks"
    dom = chromium(tmp_path, page, "--dump-dom")
    for name in (*STEP_TASKS, "worker.dispatch"):
        assert name in dom, f"{name} is not on Flower's tasks page"
    (tmp_path / "flower-dom.html").write_text(dom)
    for job_id in job_ids.values():
        assert job_id in dom
    assert SECRET_TOKEN not in dom
    screenshot(tmp_path, page, "flower-tasks.png")


def test_the_api_docs_page_and_its_openapi_list_every_route(
    api_server: ServedApi, tmp_path: Path
) -> None:
    """/docs is Swagger UI served from the package (no CDN), rendered by Chromium: each route
    of the OpenAPI document appears on the page."""
    spec = httpx.get(f"{api_server.url}/openapi.json", timeout=10).json()
    routes = set(spec["paths"])
    expected = {
        "/healthz", "/v1/assets", "/v1/batches", "/v1/batches/{batch_id}",
        "/v1/batches/{batch_id}/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/video",
        "/v1/jobs/{job_id}/poster",
    }  # fmt: skip
    assert expected <= routes

    dom = chromium(tmp_path, f"{api_server.url}/docs", "--dump-dom")

    assert "<title>nemo-batch - Swagger UI</title>" in dom
    shown = set(re.findall(r'data-path="([^"]+)"', dom))
    assert expected <= shown, f"not on the page: {expected - shown}"
    screenshot(tmp_path, f"{api_server.url}/docs", "api-docs.png")
