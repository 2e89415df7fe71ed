"""Render status in every word and shape no source rules out: synonyms in any case, the output
URL under any key listed, and the backend's own render id."""

from __future__ import annotations

from typing import Any

import pytest

from worker.nemo import RenderStatus


@pytest.mark.parametrize(
    "word", ["success", "succeeded", "done", "finished", "complete", "COMPLETED", "Done"]
)
def test_every_completed_synonym_in_any_case_means_completed(word: str) -> None:
    status = RenderStatus.parse({"id": "r", "status": word, "outputUrl": "https://c/o.mp4"}, "r")
    assert status.status == "completed" and status.succeeded


@pytest.mark.parametrize("word", ["failure", "error", "FAILED", "timeout", "Timed-Out"])
def test_every_failure_word_means_failed(word: str) -> None:
    assert RenderStatus.parse({"status": word}, "r").status == "failed"


@pytest.mark.parametrize("word", ["canceled", "cancelled", "CANCELLED"])
def test_both_spellings_of_canceled_end_the_render(word: str) -> None:
    status = RenderStatus.parse({"status": word}, "r")
    assert status.status == "canceled" and status.is_final and not status.succeeded


@pytest.mark.parametrize(
    "answer",
    [
        {"outputUrl": "https://c/o.mp4"},
        {"output_url": "https://c/o.mp4"},
        {"output": {"url": "https://c/o.mp4"}},
        {"url": "https://c/o.mp4"},
        {"downloadUrl": "https://c/o.mp4"},
        {"download_url": "https://c/o.mp4"},
        {"output": "https://c/o.mp4"},
        {"output": ["https://c/o.mp4", "https://c/other.mp4"]},
        {"output": [{"url": "https://c/o.mp4"}]},
        {"outputs": [{"download_url": "https://c/o.mp4"}]},
    ],
)
def test_the_output_url_is_found_under_every_key_listed(answer: dict[str, Any]) -> None:
    status = RenderStatus.parse({"status": "done", **answer}, "r")
    assert status.output_url == "https://c/o.mp4"


def test_a_completed_render_without_any_url_has_none_and_the_download_route_is_the_fallback() -> (
    None
):
    status = RenderStatus.parse({"status": "completed", "output": None}, "r")
    assert status.succeeded and status.output_url is None


def test_the_backends_own_render_id_is_kept() -> None:
    assert RenderStatus.parse({"taskId": "lambda-77", "status": "pending"}, "render_1").id == (
        "lambda-77"
    )
    assert RenderStatus.parse({"status": "pending"}, "render_1").id == "render_1"


def test_an_unknown_status_word_is_unknown_not_final() -> None:
    status = RenderStatus.parse({"status": "warming_up"}, "r")
    assert status.status == "unknown" and not status.is_final
