"""The API against its own OpenAPI document, as schemathesis's command line sees it: every check
(`--checks all`: server errors, status codes, content types, headers and bodies conforming,
schema-invalid requests rejected, schema-valid ones accepted, auth enforced, methods refused),
every phase, over real HTTP, on a budget of examples that keeps it under two minutes."""

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.storage import LocalStorage
from tests.api.conftest import Account, png_bytes, update_job
from tests.cli.conftest import ServedApi, api_server

__all__ = ["api_server"]  # the fixture: the app served by uvicorn over the test database

EXAMPLES_PER_OPERATION = 40
SEED = 15
RUN_TIMEOUT_S = 300
"""A guard against a hung run; 40 examples take 20 to 50 s here (2 busy cores), well under 2 min."""
CONFIG = Path(__file__).with_name("schemathesis.toml")
REAL_ID_SHARE = 0.5
"""How often a path id is one of the tenant's real resources rather than a generated one."""


@pytest.fixture()
def tenant_api(api_server: ServedApi, account: Account) -> Iterator[httpx.Client]:
    """The API as the tenant; the schedules the run leaves are deleted after it, so that no
    worker test finds one of them due."""
    with httpx.Client(base_url=api_server.url, headers=account.headers, timeout=10) as http:
        yield http
        while schedules := http.get("/v1/schedules", params={"limit": 100}).json()["items"]:
            for schedule in schedules:
                assert http.delete(f"/v1/schedules/{schedule['id']}").status_code == 204


def real_resources(http: httpx.Client, storage_dir: Path) -> dict[str, list[str]]:
    """Resources of the tenant, made through the API, by path parameter: an asset, a batch of a
    finished and a queued job, and a schedule; so answers of found things are checked too."""
    files = {"file": ("mug.png", png_bytes("#1e90ff"), "image/png")}
    asset = http.post("/v1/assets", files=files).json()["id"]
    items = [{"ref": "mug", "title": "Mug", "images": [asset]}, {"prompt": "A cup, spinning"}]
    batch = http.post("/v1/batches", json={"items": items}).json()["id"]
    jobs = [job["id"] for job in http.get(f"/v1/batches/{batch}/jobs").json()["items"]]
    schedule = {"name": "nightly", "cron": "0 2 * * *", "items": items[1:]}
    schedule_id = http.post("/v1/schedules", json=schedule).json()["id"]
    storage = LocalStorage(storage_dir)
    video = storage.save_chunks("outputs", [b"\x00\x00\x00\x18ftypmp42" + bytes(1000)], "mp4")
    poster = storage.save_chunks("posters", [b"\xff\xd8\xff" + bytes(100)], "jpg")
    output = {"path": video.key, "poster_path": poster.key, "duration": 8.0, "size": 1012}
    update_job(jobs[0], state="succeeded", output=output)
    return {"asset_id": [asset], "batch_id": [batch], "job_id": jobs, "schedule_id": [schedule_id]}


def configuration(resources: dict[str, list[str]], folder: Path) -> Path:
    """tests/api/schemathesis.toml, with each path id drawn from `resources` half of the time."""
    lines = [CONFIG.read_text(), "[parameters]"]
    for name in resources:
        binding = f'{{ dictionary = "{name}", probability = {REAL_ID_SHARE} }}'
        lines.append(f'"path.{name}" = {binding}')
    for name, values in resources.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(values)}"]
    path = folder / "schemathesis.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def run_schemathesis(
    api: ServedApi, account: Account, config: Path, report: Path
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{api.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            str(SEED),
            "--workers",
            "1",
            "--header",
            f"Authorization: Bearer {account.key}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=report.parent,  # its cache of past failures stays out of the worktree
    )


def test_schemathesis_with_every_check_finds_no_disagreement_between_document_and_server(
    api_server: ServedApi,
    account: Account,
    tenant_api: httpx.Client,
    storage_dir: Path,
    tmp_path: Path,
) -> None:
    config = configuration(real_resources(tenant_api, storage_dir), tmp_path)
    report = tmp_path / "schemathesis.json"
    run = run_schemathesis(api_server, account, config, report)
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    summary: dict[str, Any] = json.loads(report.read_text())
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 25
    phases = {name: phase["status"] for name, phase in summary["phases"].items()}
    assert phases == dict.fromkeys(("examples", "coverage", "fuzzing", "stateful"), "success")
    assert summary["test_cases"]["generated"] > 1000
