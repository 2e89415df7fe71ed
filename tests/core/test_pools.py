"""Connection pools sized from each process's concurrency, their total printed against
PostgreSQL's max_connections, and every session with statement and idle-transaction timeouts."""

from typing import Any

from sqlalchemy import text
from typer.testing import CliRunner

from core.pools import ProcessGroup, plan_for, total_connections


def test_a_prefork_child_needs_one_connection_and_a_threads_pool_a_few() -> None:
    assert plan_for("pipeline", 8).most == 2
    assert plan_for("webhooks", 4).most == 2
    assert plan_for("stream", 100).size == 20
    assert plan_for("api", 40).size == 10
    # A prefork worker of 4 children opens up to 4 pools.
    assert ProcessGroup("w", "pipeline", 4).connections == 8


def test_the_compose_process_set_fits_postgres_default_of_100() -> None:
    compose = [
        ProcessGroup("api", "api", 40, count=2),
        ProcessGroup("worker", "pipeline", 4),
        ProcessGroup("worker-stream", "stream", 100),
        ProcessGroup("worker-webhooks", "webhooks", 4),
        ProcessGroup("worker-schedules", "schedules", 1),
        ProcessGroup("beat", "beat", 1),
    ]
    assert total_connections(compose) <= 97
    fixed = 30 * (2 + 4 + 1 + 4 + 1 + 1)  # the former 10 + 20 per process
    assert fixed > 100


def test_the_pools_command_prints_the_total_against_max_connections(settings: Any) -> None:
    from cli.main import app

    fits = CliRunner().invoke(app, ["pools"])
    assert fits.exit_code == 0, fits.output
    assert "of PostgreSQL's max_connections" in fits.output
    assert "fits" in fits.output
    crowded = CliRunner().invoke(app, ["pools", "--pipeline-workers", "500"])
    assert crowded.exit_code == 1
    assert "EXCEEDS" in crowded.output


def test_every_session_ends_runaway_statements_and_idle_transactions(settings: Any) -> None:
    from core.db import new_session

    with new_session() as session:
        statement = session.execute(text("SHOW statement_timeout")).scalar_one()
        idle = session.execute(text("SHOW idle_in_transaction_session_timeout")).scalar_one()
    assert (statement, idle) == ("2min", "15min")
