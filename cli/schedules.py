"""`nemo-batch schedule ...`: create, list, show, pause, resume, delete and run schedules over
the API (`--api-url` or NEMO_BATCH_API_URL; NEMO_BATCH_API_KEY or `--api-key-stdin`)."""

import json
from contextlib import suppress
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from cli.api_client import ApiClient
from cli.client_commands import ApiKeyOption, ApiUrlOption, api_client
from cli.local_media import LocalFileError, MediaResolver, resolve_csv, resolve_json
from core.csv_import import read_csv
from core.errors import InputError

console = Console()
schedule_app = typer.Typer(help="Run batches on a cron schedule from a feed.", no_args_is_help=True)
PATH = "/v1/schedules"


def _call(client: ApiClient, method: str, path: str, **kwargs: Any) -> Any:
    return client._request(method, path, **kwargs)  # the client's one error-mapping request


def _items(client: ApiClient, path: Path) -> list[Any]:
    """Products from a CSV or JSON file, local media files uploaded as assets."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LocalFileError(f"cannot read {path}: {error}") from None
    resolver = MediaResolver(path.parent, lambda file: str(client.upload_asset(file)["id"]))
    if path.suffix.lower() == ".csv":
        try:
            parsed = read_csv(resolve_csv(text, resolver).encode(), lambda _: None)
        except InputError as error:
            raise LocalFileError(f"{path}: {error.message}") from None
        items: list[Any] = parsed.body["items"]
        return items
    try:
        data = json.loads(text)
    except ValueError as error:
        raise LocalFileError(f"{path} is neither CSV (by its name) nor JSON: {error}") from None
    body = {"items": data} if isinstance(data, list) else data
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise LocalFileError(f'{path}: give a JSON list of products or {{"items": [...]}}')
    resolved: list[Any] = resolve_json(body, resolver)["items"]
    return resolved


def _show(schedule: dict[str, Any]) -> None:
    table = Table(show_header=False, box=None)
    for name in (
        "id",
        "name",
        "cron",
        "timezone",
        "source_url",
        "item_count",
        "enabled",
        "force",
        "priority",
        "next_run_local",
        "last_run_at",
        "last_batch_id",
        "last_outcome",
        "last_error",
    ):
        value = schedule.get(name)
        table.add_row(f"[bold]{name}[/bold]", "-" if value is None else str(value))
    console.print(table)


@schedule_app.command("create")
def create_command(
    name: str = typer.Option(..., "--name", help="What the schedule is called."),
    cron: str = typer.Option(..., "--cron", help="Five cron fields, e.g. '0 2 * * *', or @daily."),
    tz: str = typer.Option("UTC", "--tz", help="IANA time zone of the cron times."),
    feed_url: str | None = typer.Option(None, "--feed-url", help="A CSV or JSON product feed."),
    items: Path | None = typer.Option(None, "--items", help="A CSV or JSON file of products."),
    prompt_template: str | None = typer.Option(None, help="The message template."),
    priority: int = typer.Option(5, min=0, max=9, help="Batch priority, 0..9."),
    webhook_url: str | None = typer.Option(None, help="Where batch events are posted."),
    force: bool = typer.Option(False, "--force", help="Every product each run, changed or not."),
    paused: bool = typer.Option(False, "--paused", help="Create it paused."),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Create a schedule; each run makes a batch of the products new or changed since."""
    if (feed_url is None) == (items is None):
        raise typer.BadParameter("give either --feed-url or --items")
    body: dict[str, Any] = {
        "name": name,
        "cron": cron,
        "timezone": tz,
        "priority": priority,
        "force": force,
        "enabled": not paused,
    }
    for field, value in (
        ("source_url", feed_url),
        ("prompt_template", prompt_template),
        ("webhook_url", webhook_url),
    ):
        if value is not None:
            body[field] = value
    with api_client(api_url, api_key_stdin) as client:
        if items is not None:
            body["items"] = _items(client, items)
        _show(_call(client, "POST", PATH, json=body))


@schedule_app.command("list")
def list_command(api_url: str | None = ApiUrlOption, api_key_stdin: bool = ApiKeyOption) -> None:
    """The tenant's schedules, newest first."""
    table = Table("name", "cron", "zone", "next run", "last outcome")
    table.add_column("id", no_wrap=True, min_width=36)  # copied into other commands whole
    with api_client(api_url, api_key_stdin) as client:
        cursor: str | None = None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = _call(client, "GET", PATH, params=params)
            for row in page["items"]:
                next_run = row["next_run_local"] or "paused"
                outcome = row["last_error"] or row["last_outcome"] or "-"
                cells = (row["name"], row["cron"], row["timezone"], next_run, outcome, row["id"])
                table.add_row(*cells)
            cursor = page.get("next_cursor")
            if not cursor:
                break
    console.print(table)


@schedule_app.command("show")
def show_command(
    schedule_id: str = typer.Argument(..., metavar="ID"),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """One schedule, with its last run's outcome and error."""
    with api_client(api_url, api_key_stdin) as client:
        _show(_call(client, "GET", f"{PATH}/{schedule_id}"))


def _set_enabled(schedule_id: str, enabled: bool, api_url: str | None, api_key_stdin: bool) -> None:
    with api_client(api_url, api_key_stdin) as client:
        _show(_call(client, "PATCH", f"{PATH}/{schedule_id}", json={"enabled": enabled}))


@schedule_app.command("pause")
def pause_command(
    schedule_id: str = typer.Argument(..., metavar="ID"),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Stop running the schedule until it is resumed."""
    _set_enabled(schedule_id, False, api_url, api_key_stdin)


@schedule_app.command("resume")
def resume_command(
    schedule_id: str = typer.Argument(..., metavar="ID"),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Run the schedule again from its next cron time."""
    _set_enabled(schedule_id, True, api_url, api_key_stdin)


@schedule_app.command("delete")
def delete_command(
    schedule_id: str = typer.Argument(..., metavar="ID"),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Delete the schedule (its batches stay)."""
    with api_client(api_url, api_key_stdin) as client, suppress(ValueError):  # a 204 has no JSON
        _call(client, "DELETE", f"{PATH}/{schedule_id}")
    console.print(f"schedule {schedule_id} deleted")


@schedule_app.command("run")
def run_command(
    schedule_id: str = typer.Argument(..., metavar="ID"),
    api_url: str | None = ApiUrlOption,
    api_key_stdin: bool = ApiKeyOption,
) -> None:
    """Run the schedule now; `nemo-batch schedule show ID` tells how it went."""
    with api_client(api_url, api_key_stdin) as client:
        _call(client, "POST", f"{PATH}/{schedule_id}/run")
    console.print(
        f"schedule {schedule_id} is due now; a worker runs it within seconds "
        f"(see `nemo-batch schedule show {schedule_id}`)"
    )
