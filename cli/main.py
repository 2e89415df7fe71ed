"""`nemo-batch`: start each process, manage API keys, run the demo."""

import sys

import typer

from cli.admin import apikey_app, migrate_command, retention_command, tenant_app
from cli.client_commands import download_command, status_command, submit_command
from cli.demo import demo_command
from cli.emulator_cmd import emulator_command
from cli.processes import beat_command, flower_command, pools_command, worker_command
from cli.schedules import schedule_app
from cli.up import up_command

app = typer.Typer(help="Batch product videos on the NemoVideo backend.", no_args_is_help=True)
NEEDS_SERVICES = {
    "migrate", "apikey", "tenant", "worker", "beat", "flower", "api", "demo", "up", "pools",
    "retention",
}  # fmt: skip


@app.callback()
def _services(ctx: typer.Context) -> None:
    """With DATABASE_URL or REDIS_URL unset, commands that need them run on nemo-batch's own
    embedded PostgreSQL and Redis (data under ./var/), started on first use and shared by every
    command running at the same time."""
    if ctx.invoked_subcommand not in NEEDS_SERVICES or {"--help", "-h"} & set(sys.argv):
        return
    from core.embedded import EmbeddedServerError, release_all, use_embedded_services

    try:
        held = use_embedded_services()
    except EmbeddedServerError as error:
        typer.echo(f"nemo-batch: {error}", err=True)
        raise typer.Exit(1) from error
    if held and ctx.invoked_subcommand in {"up", "demo"}:
        # Wait for the servers to stop at the end, so that "stopped" means stopped.
        ctx.call_on_close(lambda: release_all(wait_s=20))


app.command("migrate")(migrate_command)
app.add_typer(apikey_app, name="apikey")
app.add_typer(tenant_app, name="tenant")
app.add_typer(schedule_app, name="schedule")
app.command("worker")(worker_command)
app.command("beat")(beat_command)
app.command("flower")(flower_command)
app.command("pools")(pools_command)
app.command("retention")(retention_command)
app.command("emulator")(emulator_command)
app.command("submit")(submit_command)
app.command("status")(status_command)
app.command("download")(download_command)
app.command("demo")(demo_command)
app.command("up")(up_command)


@app.command("api")
def api_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Number of API processes."),
) -> None:
    """Serve the intake API with uvicorn."""
    import uvicorn

    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers)


if __name__ == "__main__":
    app()
