"""Browser fixtures: Playwright's Python package driving the system's Chromium (no download).

Skips, naming what to install, when either is missing.
"""

import os
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from core.loopback import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("SCREENSHOT_DIR") or REPO_ROOT / "var" / "test-artifacts" / "ui")
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def need_browser() -> Any:
    """Playwright's sync API, or a skip saying which package to install."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    try:
        from playwright import sync_api
    except ImportError:
        pytest.skip(
            "the playwright package is not installed (make install, or pip install playwright)"
        )
    return sync_api


@pytest.fixture()
def browser() -> Iterator[Any]:
    sync_api = need_browser()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        try:
            yield chromium
        finally:
            chromium.close()


def keep(page: Any, name: str) -> Path:
    """A full-page screenshot kept as a test artifact (SCREENSHOT_DIR, else var/test-artifacts)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name}: the page rendered next to nothing"
    return path


@contextmanager
def served_api() -> Iterator[str]:
    """The app over the current settings' database, served by uvicorn on a free port."""
    from api.app import create_app
    from core.settings import get_settings

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(get_settings()), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="page-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
