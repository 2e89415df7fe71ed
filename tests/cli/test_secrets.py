"""Secrets of the operator's commands: Flower never runs without a password and never gets it
on its command line."""

from typing import Any

import pytest
import typer
from typer.testing import CliRunner

runner = CliRunner()


def flower_app() -> typer.Typer:
    from cli.processes import flower_command

    app = typer.Typer()
    app.command()(flower_command)
    return app


def test_flower_refuses_to_start_without_a_password(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    from worker.celery_app import app as celery

    started: list[list[str]] = []
    monkeypatch.setattr(celery, "start", started.append)
    unset = settings.model_copy(update={"flower_password": None})
    monkeypatch.setattr("cli.processes.get_settings", lambda: unset)
    result = runner.invoke(flower_app(), ["--port", "5599"])
    assert result.exit_code == 2
    assert "FLOWER_PASSWORD is not set" in result.output
    assert started == []


def test_flower_gets_its_password_from_the_environment_not_argv(
    monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    import os

    from worker.celery_app import app as celery

    started: list[list[str]] = []
    monkeypatch.setattr(celery, "start", started.append)
    monkeypatch.delenv("FLOWER_BASIC_AUTH", raising=False)
    given = settings.model_copy(update={"flower_user": "ops", "flower_password": "s3cret-pw"})
    monkeypatch.setattr("cli.processes.get_settings", lambda: given)
    result = runner.invoke(flower_app(), ["--port", "5599"])
    assert result.exit_code == 0, result.output
    (argv,) = started
    assert argv[0] == "flower"
    assert not [arg for arg in argv if "s3cret-pw" in arg or "basic-auth" in arg]
    assert os.environ["FLOWER_BASIC_AUTH"] == "ops:s3cret-pw"
