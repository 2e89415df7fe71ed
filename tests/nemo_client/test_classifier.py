"""One classifier: the same code means the same error in an HTTP status, an HTTP 200 body, an
envelope or an event inside the stream, and the policy table reacts to it the same way."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.states import JobState
from worker.nemo import (
    BackendUnavailable,
    ExportBlocked,
    NemoClient,
    NemoError,
    OutOfCredits,
    OutputExpired,
    RateLimited,
    RequestRejected,
    SessionLost,
    TokenInvalid,
    UnsupportedMedia,
)
from worker.outcomes import Backoff, Fail
from worker.policy import Attempt, outcome_for

from ._support import FakeBackend, client_answering, sse_lines, sse_response

MEANINGS: list[tuple[int, type[NemoError]]] = [
    (429, RateLimited),
    (401, TokenInvalid),
    (1001, TokenInvalid),
    (1002, SessionLost),
    (2001, OutOfCredits),
    (4001, UnsupportedMedia),
    (402, ExportBlocked),
    (500, BackendUnavailable),
    (503, BackendUnavailable),
    (403, RequestRejected),
]


def _as_http_status(code: int) -> NemoClient:
    status = code if code < 1000 else 400
    return client_answering(status, {"code": code, "message": "refused"})


def _in_a_200_body(code: int) -> NemoClient:
    return client_answering(200, {"code": code, "message": "refused", "data": None})


def _in_a_failed_success_envelope(code: int) -> NemoClient:
    return client_answering(200, {"success": False, "code": code, "error": "refused"})


def _in_a_failed_status_envelope(code: int) -> NemoClient:
    return client_answering(200, {"status": "error", "code": code, "message": "x", "data": None})


PLACES: dict[str, Callable[[int], NemoClient]] = {
    "http status": _as_http_status,
    "200 body": _in_a_200_body,
    "success envelope": _in_a_failed_success_envelope,
    "status envelope": _in_a_failed_status_envelope,
}


@pytest.mark.parametrize("place", sorted(PLACES))
@pytest.mark.parametrize(("code", "expected"), MEANINGS)
def test_a_code_means_the_same_error_wherever_it_is_sent(
    place: str, code: int, expected: type[NemoError]
) -> None:
    with pytest.raises(NemoError) as raised:
        PLACES[place](code).credits()
    assert type(raised.value) is expected


@pytest.mark.parametrize(("code", "expected"), MEANINGS)
def test_a_code_inside_the_stream_is_classified_like_the_same_code_anywhere_else(
    code: int, expected: type[NemoError]
) -> None:
    body = sse_lines({"code": code, "message": "refused mid-turn"})
    client = FakeBackend(lambda request: sse_response(body)).client()
    turn = client.send_message("5", "make a video")
    assert type(turn.failure) is expected
    assert turn.error is not None and "refused mid-turn" in turn.error


def test_an_sse_error_event_and_a_vendor_error_type_are_errors_with_their_codes() -> None:
    body = b'event: error\ndata: {"message": "quota", "code": 429}\n\n' + sse_lines(
        {"type": "error", "code": 2001, "message": "no credits"}
    )
    client = FakeBackend(lambda request: sse_response(body)).client()
    turn = client.send_message("5", "make a video")
    assert isinstance(turn.failure, RateLimited)  # the first coded error wins
    assert turn.error is not None and "quota" in turn.error and "no credits" in turn.error


def test_an_error_event_without_a_code_is_an_error_without_a_classified_failure() -> None:
    body = b"event: error\ndata: something broke\n\n"
    client = FakeBackend(lambda request: sse_response(body)).client()
    turn = client.send_message("5", "make a video")
    assert turn.error == "something broke"
    assert turn.failure is None
    assert turn.needs_verification


def test_a_429_in_a_200_body_honours_retry_after_from_the_header_or_the_body() -> None:
    headers = {"Retry-After": "7"}
    with pytest.raises(RateLimited) as from_header:
        client_answering(200, {"code": 429, "message": "slow"}, headers=headers).credits()
    assert from_header.value.retry_after == 7.0
    body = {"code": 429, "message": "slow", "data": {"retry_after": 12}}
    with pytest.raises(RateLimited) as from_body:
        client_answering(200, body).credits()
    assert from_body.value.retry_after == 12.0
    with pytest.raises(RateLimited) as bare:
        client_answering(200, {"code": 429, "message": "slow"}).credits()
    assert bare.value.retry_after is None


def test_a_429_in_a_200_body_is_a_backoff_in_the_policy_table_not_a_rejection() -> None:
    with pytest.raises(RateLimited) as raised:
        client_answering(200, {"code": 429, "message": "slow"}).credits()
    outcome = outcome_for(raised.value, Attempt(JobState.UPLOAD, 1))
    assert isinstance(outcome, Backoff)
    assert outcome.code == "rate_limited"


def test_a_403_in_a_200_body_fails_with_the_backends_words() -> None:
    with pytest.raises(RequestRejected) as raised:
        client_answering(200, {"code": 403, "message": "forbidden for this skill"}).credits()
    outcome = outcome_for(raised.value, Attempt(JobState.UPLOAD, 1))
    assert isinstance(outcome, Fail)
    assert "forbidden for this skill" in outcome.message


@pytest.mark.parametrize(
    "body",
    [
        {"status": "success", "data": {"available": 3, "frozen": 0, "total": 3}},
        {"code": 0, "message": "ok", "data": {"available": 3, "frozen": 0, "total": 3}},
        {"success": True, "data": {"available": 3, "frozen": 0, "total": 3}},
        {"available": 3, "frozen": 0, "total": 3},
    ],
)
def test_every_success_envelope_is_unwrapped(body: dict[str, Any]) -> None:
    assert client_answering(200, body).credits().available == 3


def test_a_success_with_null_data_is_not_an_error() -> None:
    client = client_answering(200, {"status": "success", "data": None})
    client.cancel_render("render_1")  # no answer needed: nothing raised


def test_a_render_status_with_a_failed_status_is_a_status_not_an_envelope_error() -> None:
    body = {"taskId": "r1", "status": "failed", "progress": 40, "error": "boom"}
    status = client_answering(200, body).render_status("r1")
    assert status.status == "failed" and status.error == "boom"


def test_a_state_answer_wrapped_in_a_status_envelope_is_read() -> None:
    state = {"state": {"draft": {"t": [{"tt": 0, "sg": [{"d": 1000}]}]}}}
    client = client_answering(200, {"status": "success", "data": state})
    assert client.session_state("5").has_timeline


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_a_download_refused_401_403_404_410_is_an_expired_output_url(
    status: int, tmp_path: Path
) -> None:
    client = FakeBackend(lambda request: httpx.Response(status, text="expired")).client()
    with pytest.raises(OutputExpired):
        client.download("https://cdn.example/out.mp4?sig=old", tmp_path / "out.mp4")
    assert list(tmp_path.iterdir()) == []
