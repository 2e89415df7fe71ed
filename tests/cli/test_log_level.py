"""`nemo-batch worker` and `beat` log at LOG_LEVEL unless --loglevel says otherwise (Celery's own
--loglevel would otherwise set INFO over the operator's setting)."""

from typing import Any

import pytest
from typer.testing import CliRunner

from cli.main import app
from core.settings import get_settings

runner = CliRunner()


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The argv each Celery program would have started with (nothing is started)."""
    from worker.celery_app import app as celery

    argvs: list[list[str]] = []
    monkeypatch.setattr(celery, "worker_main", lambda argv: argvs.append(list(argv)))
    monkeypatch.setattr(celery, "start", lambda argv: argvs.append(list(argv)))
    return argvs


def _run(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *args: str) -> Any:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        return runner.invoke(app, list(args))
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize("command", [["worker"], ["beat"]])
def test_the_log_level_comes_from_the_setting(
    monkeypatch: pytest.MonkeyPatch, started: list[list[str]], command: list[str], tmp_path: Any
) -> None:
    extra = ["--schedule", str(tmp_path / "beat")] if command == ["beat"] else []
    result = _run(monkeypatch, {"LOG_LEVEL": "WARNING"}, *command, *extra)
    assert result.exit_code == 0, result.output
    assert "--loglevel=WARNING" in started[-1]


def test_an_explicit_loglevel_wins(
    monkeypatch: pytest.MonkeyPatch, started: list[list[str]]
) -> None:
    result = _run(monkeypatch, {"LOG_LEVEL": "WARNING"}, "worker", "--loglevel", "DEBUG")
    assert result.exit_code == 0, result.output
    assert "--loglevel=DEBUG" in started[-1]
