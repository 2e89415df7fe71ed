"""Keep the job's URL inputs in storage before a backend session exists (see worker/inputs.py):
what intake's `worker.fetch_inputs` already kept is not fetched again."""

from core.input_refs import input_urls
from core.settings import get_settings
from core.storage import open_storage
from worker.inputs import Fetcher, keep_inputs
from worker.outcomes import Advance, Fail, Outcome
from worker.runner import StepContext


def fetch_step(context: StepContext) -> Outcome:
    before = dict(context.checkpoint.get("fetched") or {})
    if all(url in before for url in input_urls(context.input)):
        # Asset ids only, or every URL kept at intake: no HTTP client, no storage to open.
        return Advance(checkpoint={"fetched": before}, message=f"{len(before)} input URLs kept")
    settings = get_settings()
    with Fetcher(settings, open_storage(settings)) as fetcher:
        fetched, failure = keep_inputs(context.input, before, fetcher)
    if failure is not None:
        if fetched != before:
            context.save(fetched=fetched)
        return Fail(failure.code, failure.message)
    return Advance(checkpoint={"fetched": fetched}, message=f"{len(fetched)} input URLs kept")
