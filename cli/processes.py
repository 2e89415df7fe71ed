"""Commands that start the long-running processes: workers, beat, Flower."""

import os
import tempfile
from pathlib import Path

import typer

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
    loglevel: str = typer.Option("INFO", help="Log level."),
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
    default_queues, pool, default_concurrency = POOLS[roles[0] if roles else "pipeline"]
    argv = ["worker", f"--loglevel={loglevel}"] + (["--task-events"] if events else [])
    argv += [f"--pool={pool}", f"--concurrency={concurrency or default_concurrency}"]
    argv += [f"--queues={queues or default_queues}"]
    if hostname:
        argv += [f"--hostname={hostname}"]
    app.worker_main(argv)


def beat_command(
    loglevel: str = typer.Option("INFO", help="Log level."),
    schedule: Path = typer.Option(
        Path(tempfile.gettempdir()) / "nemo-batch-beat-schedule", help="Beat's state file."
    ),
) -> None:
    """Start Celery beat: admission, due waits, the sweeper and the credit check."""
    from worker.celery_app import app

    app.start(["beat", f"--loglevel={loglevel}", f"--schedule={schedule}"])


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
