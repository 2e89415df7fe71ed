"""`nemo-batch submit | status | download`: the API's client on the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import ApiClient, ApiClientError
from cli.batch_view import (
    WatchTimeout,
    counts_table,
    download_batch,
    results_table,
    watch_batches,
)
from cli.local_media import LocalFileError, MediaResolver, resolve_csv, resolve_json
from cli.stdin_secret import read_secret
from core.settings import get_settings

console = Console()
errors = Console(stderr=True)

ApiUrlOption = typer.Option(
    None, "--api-url", help="The API's base URL [env NEMO_BATCH_API_URL; http://127.0.0.1:8000]."
)
ApiKeyOption = typer.Option(
    False,
    "--api-key-stdin",
    help="Read the API key (`nemo-batch apikey create`) from standard input; without it, "
    "from NEMO_BATCH_API_KEY.",
)


@contextmanager
def api_client(api_url: str | None, api_key_stdin: bool) -> Iterator[ApiClient]:
    """A client from the options or the settings; API errors end the command with exit 1."""
    settings = get_settings()
    key = read_secret("API key") if api_key_stdin else settings.nemo_batch_api_key
    try:
        with ApiClient(api_url or settings.nemo_batch_api_url, key) as client:
            yield client
    except (ApiClientError, LocalFileError) as error:
        errors.print(f"[bold red]error:[/bold red] {error}", highlight=False)
        if isinstance(error, ApiClientError) and error.status == 401:
            where = (
                "standard input" if api_key_stdin else "NEMO_BATCH_API_KEY" if key else "nowhere"
            )
            errors.print(
                f"(the key came from {where}; set NEMO_BATCH_API_KEY or pipe it to --api-key-stdin)"
            )
        raise typer.Exit(1) from None


def submit_file(
    client: ApiClient,
    path: Path,
    *,
    name: str | None = None,
    params: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Upload the local files a CSV or JSON batch names, then create the batch; the batch."""
    resolver = MediaResolver(path.parent, lambda file: str(client.upload_asset(file)["id"]))
    if path.suffix.lower() == ".json":
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise LocalFileError(f"{path}: not a readable JSON file ({error})") from None
        if not isinstance(body, dict):
            raise LocalFileError(f"{path}: a batch is a JSON object with an `items` list")
        if name:
            body["name"] = name
        return client.create_batch_json(resolve_json(body, resolver), idempotency_key)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise LocalFileError(f"{path}: not a readable UTF-8 CSV file ({error})") from None
    query = {"name": name or path.stem, **(params or {})}
    return client.create_batch_csv(resolve_csv(text, resolver).encode(), query, idempotency_key)


def submit_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .csv or .json batch."),
    wait: bool = typer.Option(False, "--wait", help="Show progress until every job finished."),
    name: str | None = typer.Option(None, help="The batch's name (default: the file's name)."),
    aspect_ratio: str | None = typer.Option(None, help="CSV: default 9:16, 16:9 or 1:1."),
    duration_s: int | None = typer.Option(None, help="CSV: default video length, seconds."),
    priority: int | None = typer.Option(None, help="CSV: 0 (low) to 9 (high)."),
    idempotency_key: str | None = typer.Option(
        None, help="Send the same key again to get the same batch back instead of a new one."
    ),
    interval: float = typer.Option(1.0, help="Seconds between progress checks (--wait)."),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Submit a CSV or JSON batch; local image, clip and music files it names are uploaded."""
    params = {
        key: str(value)
        for key, value in (
            ("aspect_ratio", aspect_ratio),
            ("duration_s", duration_s),
            ("priority", priority),
        )
        if value is not None
    }
    with api_client(api_url, api_key_stdin) as client:
        batch = submit_file(client, file, name=name, params=params, idempotency_key=idempotency_key)
        console.print(
            f"batch [bold]{batch['id']}[/bold] ({batch['name']}): {batch['item_count']} jobs, "
            f"status {batch['status']}",
            highlight=False,
        )
        if batch.get("warning"):
            console.print(f"[yellow]warning:[/yellow] {batch['warning']}")
        if not wait:
            return
        try:
            (final,) = watch_batches(client, [str(batch["id"])], console, interval_s=interval)
        except WatchTimeout as error:
            errors.print(f"[red]{error}[/red]")
            raise typer.Exit(1) from None
    console.print(f"batch {final['id']}: {final['status']}", highlight=False)
    if final["status"] != "succeeded":
        raise typer.Exit(1)


def _jobs_table(jobs: list[dict[str, Any]]) -> Table:
    table = Table(title="jobs", title_justify="left")
    for column in ("#", "ref", "state", "step", "attempts", "error"):
        table.add_column(column)
    for job in jobs:
        error = f"{job['error_code']}: {job['error_message'] or ''}" if job["error_code"] else ""
        table.add_row(
            str(job["item_index"]),
            job["ref"] or "",
            job["state"],
            job["step"] or "",
            str(job["attempts"]),
            error,
        )
    return table


def status_command(
    batch_id: str | None = typer.Argument(None, help="A batch id (none: list recent batches)."),
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="List the batch's jobs too."),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Show a batch: status, progress, jobs by state and each job (or list recent batches)."""
    with api_client(api_url, api_key_stdin) as client:
        if batch_id is None:
            recent = [batch for _, batch in zip(range(20), client.list_batches(), strict=False)]
            if not recent:
                console.print("no batches yet; submit one with `nemo-batch submit FILE.csv`")
                return
            table = Table(title="recent batches", title_justify="left")
            table.add_column("id", no_wrap=True, min_width=36)
            for column in ("name", "status", "done", "created"):
                table.add_column(column)
            for batch in recent:
                table.add_row(
                    str(batch["id"]),
                    batch["name"],
                    batch["status"],
                    f"{batch['progress']:.0%} of {batch['item_count']}",
                    batch["created_at"][:16].replace("T", " "),
                )
            console.print(table)
            return
        batch = client.get_batch(batch_id)
        console.print(
            f"batch [bold]{batch['id']}[/bold] ({batch['name']}): status {batch['status']}, "
            f"{batch['progress']:.0%} done of {batch['item_count']} jobs",
            highlight=False,
        )
        console.print(counts_table([batch]))
        if jobs:
            console.print(_jobs_table(list(client.list_jobs(batch_id))))


def download_command(
    batch_id: str = typer.Argument(..., help="A batch id."),
    directory: Path = typer.Argument(..., file_okay=False, help="Where the files go."),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Download every finished video and poster of a batch to DIRECTORY (safe to re-run)."""
    with api_client(api_url, api_key_stdin) as client:
        results = download_batch(client, batch_id, directory, console)
    console.print(results_table(results))
    done = sum(1 for result in results if result.path is not None)
    console.print(f"{done} of {len(results)} videos in {directory}", highlight=False)
