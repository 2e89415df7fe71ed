"""`nemo-batch demo`: the whole stack on this machine, one CSV in, a folder of MP4s out.

It uses its own database (created and migrated), its own Redis db and a storage folder under
./var/demo/, so it never touches other data; with DATABASE_URL and REDIS_URL unset, on the
embedded servers under ./var/ (`core/embedded`). With NEMO_API_BASE and NEMO_TOKEN set it
drives that backend; otherwise it starts the emulator. The processes are the ones `nemo-batch
up` starts (`cli/stack.py`), supervised the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import typer
from rich.console import Console
from sqlalchemy.engine import make_url

from cli.api_client import ApiClient, ApiClientError
from cli.batch_view import FINAL_BATCH, WatchTimeout, download_batch, results_table, watch_batches
from cli.client_commands import submit_file
from cli.demo_stack import ProcessSet, interrupt_on_sigterm
from cli.local_media import LocalFileError
from cli.stack import EmulatorOptions, StackPlan, new_api_key, start_stack
from core.settings import Settings, get_settings

console = Console()
DEMO_TENANT = "demo"

FAST_SETTINGS = {
    "NEMO_POLL_INTERVAL_S": "1",
    "VERIFY_POLL_INTERVAL_S": "0.5",
    "VERIFY_TIMEOUT_S": "10",
    "CLAIM_INTERVAL_S": "0.5",
    "SWEEP_INTERVAL_S": "3",
    "HEARTBEAT_STALE_S": "20",
    "STEP_LEASE_S": "10",
    "RETRY_BASE_DELAY_S": "0.5",
    "RETRY_MAX_DELAY_S": "4",
    "CREDITS_CHECK_INTERVAL_S": "3",
    "NEMO_RATE_LIMIT_RPS": "5",
    "NEMO_RATE_LIMIT_BURST": "10",
    "NEMO_REQUEST_TIMEOUT_S": "30",
}
"""Short waits for the emulator's scaled-down latencies (its realistic profile: 5 requests/s)."""


def uses_real_backend(settings: Settings) -> bool:
    """NEMO_API_BASE and NEMO_TOKEN both given: drive that backend instead of the emulator."""
    return "nemo_api_base" in settings.model_fields_set and bool(settings.nemo_token)


def prepare_database(settings: Settings, name: str) -> str:
    """The demo database's URL on the configured server: created if missing, then migrated."""
    from migrations.runner import upgrade

    url = make_url(settings.database_url).set(database=name)
    admin = url.set(drivername="postgresql", database="postgres")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as db:
        exists = db.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            db.execute(f'CREATE DATABASE "{name}"')
    database_url = url.render_as_string(hide_password=False)
    upgrade(database_url)
    return database_url


def redis_url_with_db(redis_url: str, db: int) -> str:
    parts = urlsplit(redis_url)
    return urlunsplit(parts._replace(path=f"/{db}"))


def _cancel_leftovers(client: ApiClient) -> None:
    """Batches an interrupted earlier demo left unfinished would compete for the workers."""
    for batch in list(client.list_batches()):
        if batch["status"] not in FINAL_BATCH:
            client.cancel_batch(str(batch["id"]))
            console.print(f"canceled unfinished batch {batch['id']} of an earlier demo run")


def demo_command(
    csv_file: Path = typer.Option(
        Path("examples/products.csv"), "--csv", exists=True, dir_okay=False, help="The batch."
    ),
    output: Path = typer.Option(Path("output"), help="Where the MP4s and posters go."),
    profile: str = typer.Option("realistic", help="Emulator profile: ideal|realistic|hostile."),
    time_scale: float = typer.Option(0.02, help="Emulator delays x this (1 = real latencies)."),
    render_scale: float = typer.Option(0.5, help="Emulator frame size factor."),
    database: str = typer.Option(
        "nemo_batch_demo", envvar="NEMO_DEMO_DATABASE", help="The demo's own database."
    ),
    redis_db: int = typer.Option(13, envvar="NEMO_DEMO_REDIS_DB", help="The demo's Redis db."),
    timeout: float | None = typer.Option(
        None, help="Give up after this many seconds (default 280; 3600 on a real backend)."
    ),
    keep_running: bool = typer.Option(
        False, "--keep-running", help="Leave the stack up after the batch, until Ctrl-C."
    ),
) -> None:
    """Run the whole stack against the emulator on examples/products.csv."""
    started = time.monotonic()
    settings = get_settings()
    real = uses_real_backend(settings)
    root = Path("var/demo")
    root.mkdir(parents=True, exist_ok=True)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root)).resolve()
    ok = False
    with interrupt_on_sigterm():
        console.rule("nemo-batch demo")
        database_url = prepare_database(settings, database)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url_with_db(settings.redis_url, redis_db),
            "STORAGE_DIR": str(run_dir / "storage"),
            "PYTHONUNBUFFERED": "1",
        }
        if not real:
            env |= FAST_SETTINGS
        processes = ProcessSet(env, run_dir / "logs")
        try:
            ok = _run(processes, env, run_dir, database_url, csv_file, output, real, timeout,
                      profile=profile, time_scale=time_scale, render_scale=render_scale,
                      keep_running=keep_running)  # fmt: skip
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; stopping the stack[/yellow]")
        except (ApiClientError, LocalFileError, WatchTimeout, RuntimeError) as error:
            console.print(f"[bold red]demo failed:[/bold red] {error}", highlight=False)
        finally:
            with console.status("stopping the processes"):
                processes.stop()
    elapsed = time.monotonic() - started
    if ok:
        shutil.rmtree(run_dir, ignore_errors=True)
        console.print(f"[green]every job succeeded[/green] in {elapsed:.0f} s; videos in {output}/")
        return
    console.print(f"logs and storage kept in {run_dir} ({elapsed:.0f} s)", highlight=False)
    raise typer.Exit(1)


def _run(
    processes: ProcessSet,
    env: dict[str, str],
    run_dir: Path,
    database_url: str,
    csv_file: Path,
    output: Path,
    real: bool,
    timeout: float | None,
    *,
    profile: str,
    time_scale: float,
    render_scale: float,
    keep_running: bool,
) -> bool:
    """Start everything, submit the CSV, watch, download; True when every job succeeded."""
    emulator = None if real else EmulatorOptions(profile, time_scale, render_scale)
    plan = StackPlan(run_dir=run_dir, emulator=emulator, stream_concurrency=16, node="demo")
    stack = start_stack(processes, plan)
    if stack.emulator_url is None:
        console.print(f"backend: {env['NEMO_API_BASE']} (NEMO_API_BASE, with NEMO_TOKEN)")
    else:
        console.print(
            f"emulator: {stack.emulator_url} (profile {profile}, time scale {time_scale})"
        )
    api_url = stack.api_url
    api_key = new_api_key(database_url, DEMO_TENANT)
    console.print(f"API: {api_url} (docs at {api_url}/docs); workers and beat started")
    console.print(f"logs: {processes.logs}", highlight=False)

    def supervise() -> str | None:
        return processes.supervise(say=lambda line: console.print(line, highlight=False))

    with ApiClient(api_url, api_key) as client:
        _cancel_leftovers(client)
        with console.status(f"uploading the files {csv_file.name} names"):
            batch = submit_file(client, csv_file, name="demo")
        console.print(f"submitted batch {batch['id']}: {batch['item_count']} products")
        limit = timeout if timeout is not None else (3600.0 if real else 280.0)
        (final,) = watch_batches(
            client, [str(batch["id"])], console, interval_s=0.5, timeout_s=limit,
            should_stop=supervise,
        )  # fmt: skip
        results = download_batch(client, str(final["id"]), output, console)
    console.print(results_table(results, base=Path.cwd()))
    succeeded = bool(results) and all(result.state == "succeeded" for result in results)
    if keep_running:
        console.print(
            f"the stack keeps running: API {api_url}, key {api_key}\n"
            f"  NEMO_BATCH_API_KEY={api_key} nemo-batch status --api-url {api_url}\n"
            "press Ctrl-C to stop it",
            highlight=False,
        )
        try:
            while supervise() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return succeeded
