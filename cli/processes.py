"""Commands that start the long-running processes: workers, beat, Flower."""

import os
import tempfile
from pathlib import Path

import typer

from core.db import configure_pool
from core.pools import API_THREADS, ProcessGroup
from core.settings import get_settings

FLOWER_TASK_COLUMNS = "name,uuid,state,args,kwargs,received,started,runtime,worker"


POOLS = {
    # role: (queues, pool, default concurrency)
    "pipeline": ("pipeline,poll", "prefork", 2),
    "stream": ("stream", "threads", 100),
    "webhooks": ("webhooks", "prefork", 4),
    "schedules": ("schedules", "prefork", 1),
}
"""Each kind of work on a pool of its own: a slow webhook receiver or a large feed never
holds a process that jobs wait for."""


def worker_command(
    stream: bool = typer.Option(
        False, "--stream", help="Serve the `stream` queue (SSE turns) on a threads pool."
    ),
    webhooks: bool = typer.Option(
        False, "--webhooks", help="Serve the `webhooks` queue (deliveries) on a pool of its own."
    ),
    schedules: bool = typer.Option(
        False, "--schedules", help="Serve the `schedules` queue (feed runs) on a pool of its own."
    ),
    concurrency: int | None = typer.Option(None, help="Processes (prefork) or threads (stream)."),
    queues: str | None = typer.Option(None, help="Comma-separated queues to serve."),
    loglevel: str | None = typer.Option(None, help="Log level (default: LOG_LEVEL, else INFO)."),
    hostname: str | None = typer.Option(None, "-n", "--hostname", help="Worker node name."),
    events: bool = typer.Option(
        False,
        "--events",
        "-E",
        help="Always send task events (Flower turns them on by itself while it runs).",
    ),
) -> None:
    """Start a Celery worker: prefork for pipeline and poll (the default), webhooks or
    schedules, or threads for streams."""
    from worker.celery_app import app

    roles = [name for name, chosen in (("stream", stream), ("webhooks", webhooks),
                                       ("schedules", schedules)) if chosen]  # fmt: skip
    if len(roles) > 1:
        raise typer.BadParameter("choose one of --stream, --webhooks and --schedules")
    role = roles[0] if roles else "pipeline"
    default_queues, pool, default_concurrency = POOLS[role]
    size = concurrency or default_concurrency
    plan = configure_pool(role, size)
    typer.echo(
        f"database pool: {plan.size} + {plan.overflow} overflow per "
        + ("child" if pool == "prefork" else "process")
        + f"; up to {ProcessGroup(role, role, size).connections} connections for this worker",
        err=True,
    )
    argv = ["worker", f"--loglevel={loglevel or get_settings().log_level}"] + (
        ["--task-events"] if events else []
    )
    argv += [f"--pool={pool}", f"--concurrency={size}"]
    argv += [f"--queues={queues or default_queues}"]
    if hostname:
        argv += [f"--hostname={hostname}"]
    app.worker_main(argv)


def connection_budget(groups: list[ProcessGroup]) -> list[str]:
    """Each group's most connections and their total against the server's max_connections."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError

    from core.pools import budget_lines, max_connections

    # An engine of its own, closed at once: this process keeps no connection open.
    engine = create_engine(get_settings().database_url)
    try:
        limit: int | None = max_connections(engine)
    except SQLAlchemyError:
        limit = None
    finally:
        engine.dispose()
    return budget_lines(groups, limit)


def pools_command(
    api_processes: int = typer.Option(1, help="API processes (all hosts)."),
    pipeline_workers: int = typer.Option(1, help="`worker` processes."),
    pipeline_concurrency: int = typer.Option(POOLS["pipeline"][2], help="Their concurrency."),
    stream_workers: int = typer.Option(1, help="`worker --stream` processes."),
    stream_concurrency: int = typer.Option(POOLS["stream"][2], help="Their threads."),
    webhooks_workers: int = typer.Option(1, help="`worker --webhooks` processes."),
    webhooks_concurrency: int = typer.Option(POOLS["webhooks"][2], help="Their concurrency."),
    schedules_workers: int = typer.Option(1, help="`worker --schedules` processes."),
) -> None:
    """Print the database connections a deployment may open, against max_connections; exit 1
    when they do not fit."""
    groups = [
        ProcessGroup("API", "api", API_THREADS, api_processes),
        ProcessGroup("pipeline workers", "pipeline", pipeline_concurrency, pipeline_workers),
        ProcessGroup("stream workers", "stream", stream_concurrency, stream_workers),
        ProcessGroup("webhooks workers", "webhooks", webhooks_concurrency, webhooks_workers),
        ProcessGroup("schedules workers", "schedules", 1, schedules_workers),
        ProcessGroup("beat", "beat", 1),
    ]
    lines = connection_budget(groups)
    for line in lines:
        typer.echo(line)
    if "EXCEEDS" in lines[-1]:
        raise typer.Exit(1)


def beat_command(
    loglevel: str | None = typer.Option(None, help="Log level (default: LOG_LEVEL, else INFO)."),
    schedule: Path = typer.Option(
        Path(tempfile.gettempdir()) / "nemo-batch-beat-schedule", help="Beat's state file."
    ),
) -> None:
    """Start Celery beat: admission, due waits, the sweeper and the credit check."""
    from worker.celery_app import app

    configure_pool("beat", 1)
    app.start(
        ["beat", f"--loglevel={loglevel or get_settings().log_level}", f"--schedule={schedule}"]
    )


def flower_command(
    port: int = typer.Option(5555, help="Port for the Flower UI."),
    address: str = typer.Option("127.0.0.1", help="Address to listen on."),
) -> None:
    """Start Flower behind basic auth (FLOWER_USER and FLOWER_PASSWORD); without a password it
    refuses to start."""
    from worker.celery_app import app

    settings = get_settings()
    if not settings.flower_password:
        typer.echo(
            "FLOWER_PASSWORD is not set: Flower can shut workers down and revoke tasks, so it "
            "never starts without a password. Set FLOWER_PASSWORD (and FLOWER_USER, default "
            "admin) in the environment or .env and start it again.",
            err=True,
        )
        raise typer.Exit(2)
    # Through the environment, which Flower reads as its options: argv is visible to `ps`.
    os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password}"
    app.start(
        [
            "flower",
            f"--port={port}",
            f"--address={address}",
            # Each step's job id shows on /tasks (task arguments are job ids, never secrets).
            f"--tasks-columns={FLOWER_TASK_COLUMNS}",
        ]
    )
