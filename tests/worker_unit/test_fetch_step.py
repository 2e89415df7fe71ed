"""The fetch step of a job with nothing left to fetch costs no HTTP client and no storage:
building a client loads the CA bundle, ~50 ms of CPU, more than a whole step (bench figure 1)."""

import uuid
from typing import Any, cast

import pytest

from core.states import JobState
from worker.nemo import NemoClient
from worker.outcomes import Advance
from worker.runner import StepContext
from worker.steps import fetch
from worker.tokens import ResolvedToken

KEPT = {"key": "inputs/ab.png", "sha256": "ab", "size": 3}


def context(job_input: dict[str, Any], checkpoint: dict[str, Any]) -> StepContext:
    return StepContext(
        job_id=uuid.uuid4(),
        step=JobState.FETCH,
        step_attempts=1,
        tenant_id=uuid.uuid4(),
        input=job_input,
        options={},
        checkpoint=checkpoint,
        token=ResolvedToken("nmv_usr_x", "registered", "shared"),
        client=cast(NemoClient, None),
        lease_s=60,
        save_checkpoint=lambda values: None,
    )


@pytest.fixture(autouse=True)
def _no_fetcher(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise AssertionError("the fetch step built a Fetcher with nothing to fetch")

    monkeypatch.setattr(fetch, "Fetcher", refuse)
    monkeypatch.setattr(fetch, "open_storage", refuse)


def test_a_job_of_asset_ids_only_advances_without_an_http_client() -> None:
    job_input = {"images": [{"asset_id": str(uuid.uuid4()), "path": "assets/a.png"}]}
    outcome = fetch.fetch_step(context(job_input, {}))
    assert isinstance(outcome, Advance)
    assert outcome.checkpoint["fetched"] == {}


def test_urls_kept_at_intake_advance_without_an_http_client() -> None:
    url = "https://shop.example/a.png"
    job_input = {"images": [{"url": url, "kind": "image"}]}
    outcome = fetch.fetch_step(context(job_input, {"fetched": {url: KEPT}}))
    assert isinstance(outcome, Advance)
    assert outcome.checkpoint["fetched"] == {url: KEPT}
