"""Keep the job's URL inputs in storage before a backend session exists (see worker/inputs.py):
what intake's `worker.fetch_inputs` already kept is not fetched again."""

from typing import Any

from core.input_refs import input_urls
from core.settings import get_settings
from core.storage import disk_full, open_storage
from worker.inputs import Fetcher, keep_inputs
from worker.outcomes import Advance, Fail, Outcome
from worker.runner import StepContext
from worker.steps.storage_room import (
    DISK_REMEDY,
    ROOM_FOUND,
    ROOM_FOUND_CHECKPOINT,
    wait_for_room,
)

DISK_WORDS = "the server's disk is full, so the product's media cannot be kept yet"


def fetch_step(context: StepContext) -> Outcome:
    """The job's URL inputs kept; on a full disk, a wait for room (`storage_room`)."""
    before = dict(context.checkpoint.get("fetched") or {})
    if all(url in before for url in input_urls(context.input)):
        # Asset ids only, or every URL kept at intake: no HTTP client, no storage to open.
        return _kept(before)
    settings = get_settings()
    try:
        with Fetcher(settings, open_storage(settings)) as fetcher:
            fetched, failure = keep_inputs(context.input, before, fetcher)
    except OSError as error:
        if not disk_full(error):
            raise
        return wait_for_room(
            context,
            "insufficient_storage",
            DISK_WORDS,
            DISK_REMEDY,
            lost="The product's media could not be kept",
            again="nothing was sent to the backend yet",
        )
    if failure is not None:
        if fetched != before:
            context.save(fetched=fetched)
        return Fail(failure.code, failure.message)
    return _kept(fetched)


def _kept(fetched: dict[str, Any]) -> Advance:
    return Advance(
        checkpoint={"fetched": fetched, **ROOM_FOUND_CHECKPOINT},
        fields=ROOM_FOUND,
        message=f"{len(fetched)} input URLs kept",
    )
