"""The web page and the zip at scale: how soon a 10,000-job batch's page shows its first screen,
and how much memory the API holds while it streams a zip of 200 videos.

Runs the API with uvicorn (real HTTP, in a thread of this process) on a scratch database it
creates, migrates and drops on the test suite's server, and drives the page in the system's
Chromium with Playwright. Not a test: it prints.

    .venv/bin/python -m bench.page [--jobs 10000] [--rounds 5] [--videos 200] [--video-mb 1.5]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import httpx
import psutil
import psycopg

FIRST_SCREEN = 48
"""Products on the page's first screen (api/static/app.js PAGE_SIZE)."""


@dataclass
class PageFigure:
    jobs: int
    first_screen_s: list[float]
    products_api_ms: float
    batch_api_ms: float

    def __str__(self) -> str:
        runs = ", ".join(f"{s:.2f}" for s in self.first_screen_s)
        return (
            f"{self.jobs} jobs: first screen in {runs} s (median "
            f"{statistics.median(self.first_screen_s):.2f} s); API: batch with counts "
            f"{self.batch_api_ms:.0f} ms, a page of {FIRST_SCREEN} products "
            f"{self.products_api_ms:.0f} ms"
        )


@dataclass
class ZipFigure:
    videos: int
    zip_mb: float
    seconds: float
    rss_before_mb: float
    rss_peak_mb: float

    def __str__(self) -> str:
        return (
            f"zip of {self.videos} videos ({self.zip_mb:.0f} MB) in {self.seconds:.1f} s; API "
            f"process RSS {self.rss_before_mb:.0f} MB before, {self.rss_peak_mb:.0f} MB at peak "
            f"(+{self.rss_peak_mb - self.rss_before_mb:.1f} MB)"
        )


@contextmanager
def scratch_api() -> Iterator[tuple[str, Path]]:
    """A migrated scratch database, a storage folder, and the API on a free port over them."""
    import uvicorn

    from core.loopback import free_port
    from tests.conftest import ADMIN_DSN, TEST_REDIS_URL, url_of_database

    database = f"nemo_bench_{uuid.uuid4().hex[:8]}"
    saved = dict(os.environ)
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
    storage = Path(TemporaryDirectory(prefix="nemo-bench-page-").name)
    os.environ.update(
        DATABASE_URL=url_of_database(database),
        REDIS_URL=TEST_REDIS_URL,
        STORAGE_DIR=str(storage),
        LOG_LEVEL="WARNING",
    )
    from api.app import create_app
    from core.db import reset_engine
    from core.settings import get_settings
    from migrations.runner import upgrade

    get_settings.cache_clear()
    reset_engine()
    server = None
    try:
        upgrade(os.environ["DATABASE_URL"])
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", storage
    finally:
        if server is not None:
            server.should_exit = True
        reset_engine()
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        shutil.rmtree(storage, ignore_errors=True)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _tenant_key() -> str:
    from core.db import session_scope
    from core.repo.tenants import create_api_key, get_or_create_tenant

    with session_scope() as session:
        return create_api_key(
            session, get_or_create_tenant(session, f"bench-{uuid.uuid4().hex[:6]}")
        )


def _batch(api: str, key: str, count: int) -> str:
    rows = ["ref,title,description,images,prompt"]
    rows += [f"sku-{i:05d},Product {i},A fine product number {i},," for i in range(count)]
    answer = httpx.post(
        f"{api}/v1/batches",
        params={"name": f"catalogue of {count}"},
        headers={"Authorization": f"Bearer {key}", "Content-Type": "text/csv"},
        content="\n".join(rows).encode(),
        timeout=120,
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def _poster(storage: Path) -> Path:
    from PIL import Image

    path = storage / "outputs" / "poster.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    Image.new("RGB", (540, 960), "#2f9e44").save(buffer, "JPEG", quality=80)
    path.write_bytes(buffer.getvalue())
    return path


def _finish(batch_id: str, outputs: list[dict[str, Any]], failed_every: int = 0) -> None:
    """Leave jobs as the download step does (the first len(outputs) of them, in item order),
    and fail every `failed_every`-th of the rest, so the grid shows every kind of card."""
    from sqlalchemy import select

    from core.db import session_scope
    from core.models import Job
    from core.states import JobState

    with session_scope() as session:
        jobs = session.scalars(
            select(Job).where(Job.batch_id == uuid.UUID(batch_id)).order_by(Job.item_index)
        ).all()
        for job, output in zip(jobs, outputs, strict=False):
            job.state, job.output = JobState.SUCCEEDED, output
        for job in jobs[len(outputs) :: failed_every or len(jobs) + 1]:
            job.state, job.error_code = JobState.FAILED, "render_failed"
            job.error_message = "The backend's render failed: encoder error. Retry the job."


def first_screen(jobs: int, rounds: int) -> PageFigure:
    from playwright.sync_api import sync_playwright

    with scratch_api() as (api, storage):
        key = _tenant_key()
        batch_id = _batch(api, key, jobs)
        poster = _poster(storage)
        video = storage / "outputs" / "video.mp4"
        video.write_bytes(b"\0" * 1024)
        output = {"path": str(video), "poster_path": str(poster), "duration_s": 15.0,
                  "size": 1024, "sha256": "0" * 64}  # fmt: skip
        _finish(batch_id, [output] * (jobs // 2), failed_every=7)
        headers = {"Authorization": f"Bearer {key}"}
        timing = {}
        for name, path in (("batch", ""), ("products", f"/products?limit={FIRST_SCREEN}")):
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                httpx.get(f"{api}/v1/batches/{batch_id}{path}", headers=headers).raise_for_status()
                samples.append(time.perf_counter() - started)
            timing[name] = statistics.median(samples) * 1000
        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        assert chromium, "chromium is not installed (Debian: apt-get install chromium)"
        seconds = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            for _ in range(rounds):
                # bypass_csp: Playwright evaluates the wait below as a string (no eval in the CSP)
                context = browser.new_context(
                    viewport={"width": 1366, "height": 900}, bypass_csp=True
                )
                page = context.new_page()
                page.goto(api)
                page.fill("#key", key)
                page.click("#signin-form button")
                page.wait_for_selector("body[data-view=batches]")
                page.goto("about:blank")
                started = time.perf_counter()
                page.goto(f"{api}/#/batches/{batch_id}")
                # The first screen: the batch's head and its first page of cards, with every
                # poster in view decoded.
                page.wait_for_function(
                    f"document.querySelectorAll('#grid li').length === {FIRST_SCREEN} && "
                    "[...document.querySelectorAll('#grid img')].filter((img) => "
                    "img.getBoundingClientRect().top < innerHeight).every((img) => "
                    "img.complete && img.naturalWidth > 0)",
                    polling="raf",
                    timeout=30_000,
                )
                seconds.append(time.perf_counter() - started)
                context.close()
            browser.close()
        return PageFigure(jobs, seconds, timing["products"], timing["batch"])


def zip_memory(videos: int, video_mb: float) -> ZipFigure:
    process = psutil.Process()
    with scratch_api() as (api, storage):
        key = _tenant_key()
        batch_id = _batch(api, key, videos)
        outputs = []
        folder = storage / "outputs"
        folder.mkdir(parents=True, exist_ok=True)
        block = os.urandom(64 * 1024)
        for index in range(videos):
            data = index.to_bytes(4) + block * int(video_mb * 16)
            digest = hashlib.sha256(data).hexdigest()
            path = folder / f"{digest}.mp4"
            path.write_bytes(data)
            outputs.append({"path": str(path), "sha256": digest, "size": len(data)})
        _finish(batch_id, outputs)
        del outputs
        before = process.memory_info().rss
        peak = [before]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.02):
                peak[0] = max(peak[0], process.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        received = 0
        started = time.perf_counter()
        headers = {"Authorization": f"Bearer {key}"}
        url = f"{api}/v1/batches/{batch_id}/videos.zip"
        with httpx.stream("GET", url, headers=headers, timeout=120) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_raw(256 * 1024):
                received += len(chunk)
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
        mb = 1024 * 1024
        return ZipFigure(videos, received / mb, seconds, before / mb, peak[0] / mb)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--videos", type=int, default=200)
    parser.add_argument("--video-mb", type=float, default=1.5)
    args = parser.parse_args()
    print(first_screen(args.jobs, args.rounds), flush=True)
    print(zip_memory(args.videos, args.video_mb), flush=True)


if __name__ == "__main__":
    main()
