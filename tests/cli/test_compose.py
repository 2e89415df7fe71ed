"""docker-compose.yml and the Dockerfile, read as data (there is no Docker engine in CI)."""

from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from cli.main import app

REPO_ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {
    "migrate",
    "api",
    "worker",
    "worker-stream",
    "worker-webhooks",
    "worker-schedules",
    "beat",
    "flower",
    "emulator",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    return loaded


def subcommands() -> set[str]:
    group = typer.main.get_group(app)
    return set(group.commands)


def test_the_stack_has_every_service(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "objectstore", *APP_SERVICES}


def test_every_command_is_a_real_nemo_batch_subcommand(compose: dict[str, Any]) -> None:
    known = subcommands()
    for name in APP_SERVICES:
        service = compose["services"][name]
        assert service["build"] == "." and service["image"] == "nemo-batch:latest", name
        command = service["command"]
        assert isinstance(command, list) and command[0] in known, (name, command)
    assert compose["services"]["worker-stream"]["command"][:2] == ["worker", "--stream"]


def test_webhooks_and_schedules_have_worker_pools_of_their_own(compose: dict[str, Any]) -> None:
    from worker.celery_app import TASK_ROUTES

    services = compose["services"]
    assert services["worker"]["command"][:1] == ["worker"]
    assert "--webhooks" in services["worker-webhooks"]["command"]
    assert "--schedules" in services["worker-schedules"]["command"]
    assert TASK_ROUTES["worker.deliver_webhook"] == {"queue": "webhooks"}
    assert TASK_ROUTES["worker.fire_schedules"] == {"queue": "schedules"}


def test_long_running_services_have_health_checks_and_restart_policies(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "/healthz" in " ".join(services["api"]["healthcheck"]["test"])
    workers = ("worker", "worker-stream", "worker-webhooks", "worker-schedules")
    for worker in workers:  # the watchdog's heartbeat, not a mere ping
        heartbeat = services[worker]["environment"]["NEMO_HEARTBEAT_FILE"]
        assert heartbeat in " ".join(services[worker]["healthcheck"]["test"]), worker
        assert services[worker]["environment"]["DATABASE_URL"].startswith("postgresql")
    for name in set(services) - {"migrate"}:
        assert "healthcheck" in services[name], name
        assert services[name]["restart"] in {"unless-stopped", "always"}, name
    assert services["migrate"]["restart"] == "no"


def test_app_services_wait_for_the_database_the_broker_and_the_migration(
    compose: dict[str, Any],
) -> None:
    for name in ("api", "worker", "worker-stream", "worker-webhooks", "beat", "flower"):
        depends = compose["services"][name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy", name
        assert depends["redis"]["condition"] == "service_healthy", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name


def test_workers_scale_and_share_only_the_object_store_with_the_api(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("worker", "worker-stream", "beat"):
        assert "container_name" not in services[name] and "ports" not in services[name], name
    for name in APP_SERVICES - {"emulator"}:
        assert not services[name].get("volumes"), f"{name} shares no volume with the others"
        environment = services[name]["environment"]
        assert environment["STORAGE_URL"] == "s3://nemo-batch", name
        assert environment["AWS_ENDPOINT_URL"] == "http://objectstore:8333", name
        assert environment["AWS_SECRET_ACCESS_KEY"].startswith("${AWS_SECRET_ACCESS_KEY"), name
        if name != "migrate":
            assert services[name]["depends_on"]["objectstore"]["condition"] == "service_healthy"
    store = services["objectstore"]
    assert "-bucket=nemo-batch" in store["command"] and "-s3.port=8333" in store["command"]
    assert store["environment"]["AWS_SECRET_ACCESS_KEY"].startswith("${AWS_SECRET_ACCESS_KEY")
    assert "objectdata:/data" in store["volumes"]
    assert {"pgdata", "objectdata"} <= set(compose["volumes"])
    assert "storage" not in compose["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]


def test_the_emulator_is_behind_a_profile_and_flower_behind_basic_auth(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["emulator"]["profiles"] == ["emulator"]
    assert all("profiles" not in services[name] for name in set(services) - {"emulator"})
    environment = services["flower"]["environment"]
    assert environment["FLOWER_USER"].startswith("${FLOWER_USER")
    assert environment["FLOWER_PASSWORD"].startswith("${FLOWER_PASSWORD:?"), "no default password"
    assert services["flower"]["ports"] == ["127.0.0.1:${FLOWER_PORT:-5555}:5555"]
    others = set(services) - {"flower", "postgres", "redis"}
    assert all("FLOWER_PASSWORD" not in services[name].get("environment", {}) for name in others)
    assert "change-me" not in (REPO_ROOT / "docker-compose.yml").read_text()


def test_the_dockerfile_installs_the_project_as_a_non_root_user() -> None:
    text = (REPO_ROOT / "Dockerfile").read_text()
    assert text.startswith("#") and "FROM python:3.11-slim" in text
    assert "pip install -c requirements.lock ." in text  # the tested versions
    assert "\nUSER nemo\n" in text
    assert 'ENTRYPOINT ["nemo-batch"]' in text
