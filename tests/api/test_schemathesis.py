"""The API against its own OpenAPI document, as schemathesis's command line sees it: every check
(`--checks all`: server errors, status codes, content types, headers and bodies conforming,
schema-invalid requests rejected, schema-valid ones accepted, auth enforced, methods refused),
every phase, over real HTTP, on a budget of examples that keeps it under two minutes."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.api.conftest import Account
from tests.cli.conftest import ServedApi, api_server

__all__ = ["api_server"]  # the fixture: the app served by uvicorn over the test database

EXAMPLES_PER_OPERATION = 40
SEED = 15
BUDGET_S = 120
CONFIG = Path(__file__).with_name("schemathesis.toml")


def run_schemathesis(api: ServedApi, account: Account, report: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(CONFIG),
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
        timeout=BUDGET_S,
        cwd=report.parent,  # its cache of past failures stays out of the worktree
    )


def test_schemathesis_with_every_check_finds_no_disagreement_between_document_and_server(
    api_server: ServedApi, account: Account, tmp_path: Path
) -> None:
    report = tmp_path / "schemathesis.json"
    run = run_schemathesis(api_server, account, report)
    print(run.stdout[-2500:])
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    summary: dict[str, Any] = json.loads(report.read_text())
    assert summary["failures"] == [] and summary["errors"] == []
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 25
    phases = {name: phase["status"] for name, phase in summary["phases"].items()}
    assert phases == dict.fromkeys(("examples", "coverage", "fuzzing", "stateful"), "success")
    assert summary["test_cases"]["generated"] > 1000
