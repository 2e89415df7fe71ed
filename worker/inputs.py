"""Inputs given as URLs, kept in our storage before the backend needs them.

A signed image URL may expire while a large batch waits its turn, so right after intake
(`worker.fetch_inputs`, sent by the API for a batch with URL media) and again as the pipeline's
`fetch` step (for whatever intake did not keep), every image, clip and music URL is fetched into
storage: bounded in bytes (MAX_UPLOAD_BYTES) and time (FEED_TIMEOUT_S), only from public
addresses (`core/netcheck`, as webhooks), and content-addressed, so an image shared by many jobs
is one object. The job's checkpoint maps each URL to its copy (`fetched`); the upload step sends
the copy, never the URL. A URL that cannot be fetched fails the job at once, saying why.
"""

import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from core.db import get_engine, session_scope
from core.input_refs import input_urls
from core.media import SNIFF_BYTES, UnsupportedMedia, sniff
from core.models import Job
from core.repo.transitions import add_event, locked_job, merge_queued_checkpoint, transition
from core.settings import Settings, get_settings
from core.states import JobState
from core.storage import Storage, open_storage
from worker.feeds import FetchError, http_client, read_url

log = logging.getLogger("worker.inputs")

FAILED_CODE = "input_unreachable"
UNSUPPORTED_CODE = "unsupported_media"


class UnsupportedInput(FetchError):
    """The URL answered with a file of a type the backend does not take."""


@dataclass(frozen=True)
class InputFailure:
    """Why a job's input could not be kept: the job's error code and a message for a user."""

    code: str
    message: str


Fetched = dict[str, dict[str, Any]]


def fetch_into(
    storage: Storage, client: httpx.Client, url: str, settings: Settings
) -> dict[str, Any]:
    """Fetch one URL into storage; its copy's key, hash and size, or `FetchError`."""
    temporary = storage.temporary_path()
    try:
        with temporary.open("wb") as handle:

            def write(chunk: bytes) -> None:
                handle.write(chunk)

            read_url(client, url, settings, settings.max_upload_bytes, write)
        with temporary.open("rb") as reader:
            head = reader.read(SNIFF_BYTES)
        try:
            media = sniff(head)
        except UnsupportedMedia as error:
            raise UnsupportedInput(f"{url}: {error}") from None
        stored = storage.adopt("inputs", temporary, media.extension)
    finally:
        temporary.unlink(missing_ok=True)
    return {"key": stored.key, "sha256": stored.sha256, "size": stored.size}


def keep_inputs(
    job_input: dict[str, Any],
    fetched: Fetched,
    fetch: Callable[[str], dict[str, Any]],
) -> tuple[Fetched, InputFailure | None]:
    """Every URL of the job kept (those in `fetched` are not fetched again): the updated map,
    and the reason of the first URL that could not be fetched (None when all were)."""
    kept = dict(fetched)
    for url in input_urls(job_input):
        if url in kept:
            continue
        try:
            kept[url] = fetch(url)
        except UnsupportedInput as error:
            return kept, InputFailure(
                UNSUPPORTED_CODE,
                f"An input is not a file the backend takes: {error}. Convert it, upload it "
                "through POST /v1/assets and use its asset id, then retry the job.",
            )
        except FetchError as error:
            return kept, InputFailure(FAILED_CODE, failure_message(str(error)))
    return kept, None


def failure_message(reason: str) -> str:
    return (
        f"An input could not be fetched: {reason}. Give a URL that answers (or upload the file "
        "through POST /v1/assets and use its asset id), then retry the job."
    )


class Fetcher:
    """Fetch URLs with one HTTP client, each URL once (a product image shared by a batch)."""

    def __init__(self, settings: Settings, storage: Storage) -> None:
        self.settings = settings
        self.storage = storage
        self.seen: dict[str, dict[str, Any] | FetchError] = {}

    def __enter__(self) -> "Fetcher":
        self.client = http_client(self.settings)
        return self

    def __exit__(self, *_: object) -> None:
        self.client.close()

    def prefetch(self, urls: Iterable[str]) -> None:
        """Fetch many URLs a few at a time (FEED_FETCH_CONCURRENCY); failures are kept too."""
        unique = [url for url in dict.fromkeys(urls) if url not in self.seen]
        workers = max(1, min(self.settings.feed_fetch_concurrency, len(unique)))
        with ThreadPoolExecutor(workers) as pool:
            for url, found in zip(unique, pool.map(self._fetch, unique), strict=True):
                self.seen[url] = found

    def _fetch(self, url: str) -> dict[str, Any] | FetchError:
        try:
            return fetch_into(self.storage, self.client, url, self.settings)
        except FetchError as error:
            return error

    def __call__(self, url: str) -> dict[str, Any]:
        if url not in self.seen:
            self.seen[url] = self._fetch(url)
        found = self.seen[url]
        if isinstance(found, FetchError):
            raise found
        return found


def fetch_batch_inputs(batch_id: str) -> int:
    """Keep the URL inputs of a batch's queued jobs now, not when each job's turn comes; a job
    whose URL cannot be fetched fails at once. Returns the number of jobs whose inputs are kept.
    Jobs already admitted are left to their own `fetch` step."""
    settings = get_settings()
    with session_scope() as session:
        rows = session.execute(
            select(Job.id, Job.input, Job.checkpoint).where(
                Job.batch_id == uuid.UUID(batch_id), Job.state == JobState.QUEUED.value
            )
        ).all()
    kept = 0
    with Fetcher(settings, open_storage(settings)) as fetcher:
        fetcher.prefetch(
            url
            for _, job_input, checkpoint in rows
            for url in input_urls(job_input or {})
            if url not in ((checkpoint or {}).get("fetched") or {})
        )
        for job_id, job_input, checkpoint in rows:
            before: Fetched = dict((checkpoint or {}).get("fetched") or {})
            fetched, failure = keep_inputs(job_input or {}, before, fetcher)
            if fetched != before:
                with get_engine().begin() as connection:
                    merge_queued_checkpoint(connection, job_id, {"fetched": fetched})
            if failure is None:
                kept += 1
            else:
                _fail_queued(job_id, failure)
    return kept


def _fail_queued(job_id: uuid.UUID, failure: InputFailure) -> None:
    """Fail a job still queued whose input could not be fetched (admitted since, its own
    `fetch` step decides)."""
    from worker import enqueue  # late: enqueue imports the tasks

    after_commit = []
    with session_scope() as session:
        job = locked_job(session, job_id)
        if job is None or job.state != JobState.QUEUED.value:
            return
        message, code = failure.message, failure.code
        add_event(session, job, "error", message, step="fetch", data={"code": code})
        transition(session, job, JobState.FAILED, message=message, error_code=code)
        after_commit = enqueue.job_finished(session, job)
    log.info("job %s failed: %s", job_id, failure.message)
    for action in after_commit:
        action()
