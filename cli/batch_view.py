"""Watching batches and fetching their videos, for `submit --wait`, `download` and the demo."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from cli.api_client import ApiClient
from core.states import FINAL, BatchStatus, JobState

FINAL_BATCH = frozenset(
    {
        BatchStatus.SUCCEEDED,
        BatchStatus.COMPLETED_WITH_FAILURES,
        BatchStatus.FAILED,
        BatchStatus.CANCELED,
    }
)
STATE_STYLE = {
    JobState.SUCCEEDED: "green",
    JobState.FAILED: "red",
    JobState.CANCELED: "dim",
    JobState.RETRY_WAIT: "yellow",
    JobState.WAITING_CREDITS: "magenta",
    JobState.QUEUED: "blue",
}


class WatchTimeout(Exception):
    """The batches did not finish within the time allowed."""


def _final_count(batch: dict[str, Any]) -> int:
    return sum(count for state, count in batch["counts"].items() if state in FINAL)


def counts_table(batches: Sequence[dict[str, Any]]) -> Table:
    """Jobs by state, one row per batch, states in pipeline order; empty states left out."""
    totals: Counter[str] = Counter()
    for batch in batches:
        totals.update(batch["counts"])
    states = [state for state in JobState if totals[state]]
    table = Table(title="jobs by state", title_justify="left", expand=False)
    table.add_column("batch")
    for state in states:
        table.add_column(state.value, justify="right", style=STATE_STYLE.get(state, "cyan"))
    for batch in batches:
        table.add_row(batch["name"], *(str(batch["counts"].get(state, 0)) for state in states))
    return table


def _summary(batch: dict[str, Any]) -> str:
    shown = ", ".join(f"{state} {n}" for state, n in batch["counts"].items() if n)
    return f"{batch['name']} ({str(batch['id'])[:8]}): {batch['status']}; {shown}"


def watch_batches(
    client: ApiClient,
    batch_ids: Sequence[str],
    console: Console,
    *,
    interval_s: float = 1.0,
    timeout_s: float | None = None,
    should_stop: Callable[[], str | None] = lambda: None,
) -> list[dict[str, Any]]:
    """Poll the batches until every one is final: a progress bar each and a live state table.

    `should_stop` may return a reason to give up early (the demo uses it when a process dies).
    """
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
    )
    bars: dict[str, TaskID] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last_lines: dict[str, str] = {}
    live = Live(progress, console=console, refresh_per_second=4) if console.is_terminal else None
    with live or nullcontext():
        while True:
            batches = [client.get_batch(batch_id) for batch_id in batch_ids]
            for batch in batches:
                key = str(batch["id"])
                if key not in bars:
                    bars[key] = progress.add_task(
                        batch["name"], total=batch["item_count"], status=""
                    )
                progress.update(
                    bars[key],
                    total=batch["item_count"],
                    completed=_final_count(batch),
                    status=batch["status"],
                )
                if live is None and last_lines.get(key) != (line := _summary(batch)):
                    # Not a terminal (a log, CI): one line per change instead of redrawing.
                    console.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False)
                    last_lines[key] = line
            if live is not None:
                live.update(Group(progress, counts_table(batches)))
            if all(batch["status"] in FINAL_BATCH for batch in batches):
                if live is None:
                    console.print(counts_table(batches))
                return batches
            if (reason := should_stop()) is not None:
                raise WatchTimeout(reason)
            if deadline is not None and time.monotonic() > deadline:
                raise WatchTimeout(f"the batches were not finished after {timeout_s:.0f} s")
            time.sleep(interval_s)


@dataclass
class JobResult:
    ref: str
    state: str
    duration: float | None = None
    size: int | None = None
    path: Path | None = None
    poster: Path | None = None
    error: str | None = None


def _file_stem(job: dict[str, Any], taken: set[str]) -> str:
    raw = job.get("ref") or str(job["id"])
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", raw).strip("._") or str(job["id"])
    if stem in taken:
        stem = f"{stem}-{job['item_index']}"
    taken.add(stem)
    return stem


def download_batch(
    client: ApiClient, batch_id: str, directory: Path, console: Console
) -> list[JobResult]:
    """Each succeeded job's MP4 and poster into `directory` (resumable); one result per job."""
    jobs = list(client.list_jobs(batch_id))
    directory.mkdir(parents=True, exist_ok=True)
    results: list[JobResult] = []
    taken: set[str] = set()
    with Progress(
        TextColumn("downloading"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=not console.is_terminal,
    ) as progress:
        bar = progress.add_task("download", total=len(jobs))
        for job in jobs:
            stem = _file_stem(job, taken)
            result = JobResult(ref=job.get("ref") or str(job["id"]), state=job["state"])
            results.append(result)
            if job["state"] != JobState.SUCCEEDED:
                if job.get("error_code"):
                    result.error = f"{job['error_code']}: {job.get('error_message') or ''}"
                progress.advance(bar)
                continue
            output = client.get_job(str(job["id"])).get("output") or {}
            result.duration = output.get("duration")
            video = directory / f"{stem}.mp4"
            result.size = client.download(
                f"/v1/jobs/{job['id']}/video", video, expected_size=output.get("size")
            )
            result.path = video
            if output.get("poster_url"):
                result.poster = directory / f"{stem}.jpg"
                client.download(f"/v1/jobs/{job['id']}/poster", result.poster)
            progress.advance(bar)
    return results


def _size(size: int | None) -> str:
    if size is None:
        return "-"
    return f"{size / 1024 / 1024:.2f} MB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KB"


def results_table(results: Sequence[JobResult], base: Path | None = None) -> Table:
    """ref, state, duration, size and path of each job (the error for the ones that failed)."""
    table = Table(title="results", title_justify="left")
    for column, justify in (("ref", "left"), ("state", "left"), ("duration", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    table.add_column("size", justify="right")
    table.add_column("path")
    for result in results:
        style = STATE_STYLE.get(result.state, "")  # type: ignore[call-overload]
        where = ""
        if result.path is not None:
            shown = result.path
            if base is not None and result.path.is_relative_to(base):
                shown = result.path.relative_to(base)
            where = str(shown)
        elif result.error:
            where = f"[red]{result.error}[/red]"
        table.add_row(
            result.ref,
            f"[{style}]{result.state}[/{style}]" if style else result.state,
            f"{result.duration:.1f} s" if result.duration is not None else "-",
            _size(result.size),
            where,
        )
    return table
