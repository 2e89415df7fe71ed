"""`nemo-batch up`: the whole stack in the foreground until Ctrl-C.

Embedded PostgreSQL and Redis unless DATABASE_URL / REDIS_URL are given, migrations, the API,
the workers, beat, Flower, and the emulator unless NEMO_API_BASE is set; every process is
started again when it exits, and all of it stops on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import time

import typer
from rich.console import Console
from rich.table import Table

from cli.demo_stack import ProcessSet, interrupt_on_sigterm
from cli.processes import connection_budget
from cli.stack import (
    EmulatorOptions,
    RunningStack,
    StackPlan,
    new_api_key,
    process_groups,
    shown_url,
    stack_env,
    start_stack,
)
from core.embedded import held_servers, var_dir
from core.settings import get_settings

console = Console()
FIRST_TENANT = "default"


def up_command(
    api_port: int = typer.Option(8000, help="Port of the API."),
    flower_port: int = typer.Option(5555, help="Port of Flower."),
    profile: str = typer.Option("realistic", help="Emulator profile: ideal|realistic|hostile."),
    time_scale: float = typer.Option(0.05, help="Emulator delays x this (1 = real latencies)."),
    concurrency: int = typer.Option(2, help="Processes of the pipeline worker."),
    stream_concurrency: int = typer.Option(32, help="Threads of the stream worker."),
) -> None:
    """Run the whole stack in the foreground, with one table of what runs where."""
    settings = get_settings()
    use_emulator = "nemo_api_base" not in settings.model_fields_set
    run_dir = var_dir() / "up"
    processes = ProcessSet(stack_env(), run_dir / "logs")
    exit_code = 0
    with interrupt_on_sigterm():
        try:
            from migrations.runner import upgrade

            with console.status("migrating the database"):
                upgrade(settings.database_url)
            plan = StackPlan(
                run_dir=run_dir,
                emulator=EmulatorOptions(profile, time_scale) if use_emulator else None,
                api_port=api_port,
                flower_port=flower_port,
                pipeline_concurrency=concurrency,
                stream_concurrency=stream_concurrency,
                node="up",
            )
            with console.status("starting the processes"):
                stack = start_stack(processes, plan)
            key = new_api_key(settings.database_url, FIRST_TENANT)
            console.print(_where_table(stack, key))
            console.print(f"API key for tenant '{FIRST_TENANT}': {key}", highlight=False)
            for line in connection_budget(process_groups(plan)):
                console.print(f"database connections: {line}", highlight=False)
            console.print("press Ctrl-C to stop everything", style="bold")
            while (reason := processes.supervise(say=_say)) is None:
                time.sleep(1)
            console.print(f"[bold red]stopping:[/bold red] {reason}", highlight=False)
            exit_code = 1
        except KeyboardInterrupt:
            console.print("stopping")
        except RuntimeError as error:
            console.print(f"[bold red]nemo-batch up failed:[/bold red] {error}", highlight=False)
            exit_code = 1
        finally:
            with console.status("stopping the processes"):
                processes.stop()
    console.print("every process stopped")
    raise typer.Exit(exit_code)


def _say(line: str) -> None:
    console.print(line, highlight=False)


def _where_table(stack: RunningStack, api_key: str) -> Table:
    settings = get_settings()
    table = Table(title="nemo-batch is up", show_lines=False)
    # Folded, never cut: every URL, key and path must stay whole to be copied.
    table.add_column("what", overflow="fold")
    table.add_column("where", overflow="fold")
    table.add_column("log", overflow="fold")
    logs = stack.logs
    table.add_row("API", f"{stack.api_url}  (docs: {stack.api_url}/docs)", str(logs / "api.log"))
    table.add_row("web page", f"{stack.api_url}/  (sign in with the API key)", "")
    table.add_row(f"API key, tenant '{FIRST_TENANT}'", api_key, "new; shown once, below too")
    if stack.flower_url:
        table.add_row(
            "Flower",
            f"{stack.flower_url}  (user {settings.flower_user}, password "
            f"{stack.extra.get('flower_password', 'FLOWER_PASSWORD')})",
            str(logs / "flower.log"),
        )
    if stack.emulator_url:
        table.add_row("backend: emulator", stack.emulator_url, str(logs / "emulator.log"))
    else:
        table.add_row("backend", stack.backend_url, "NEMO_API_BASE")
    table.add_row(
        "workers",
        "pipeline (prefork), stream (threads), webhooks, schedules, beat",
        f"{logs}/worker*.log",
    )
    embedded = {server.kind: server for server in held_servers()}
    for kind, name, url in (
        ("postgres", "PostgreSQL", settings.database_url),
        ("redis", "Redis", settings.redis_url),
    ):
        if kind in embedded:
            server = embedded[kind]
            table.add_row(f"{name} (embedded)", shown_url(url), str(server.log_path))
        else:
            table.add_row(name, shown_url(url), "given by the environment")
    table.add_row("storage", str(settings.storage_dir.absolute()), "")
    return table
