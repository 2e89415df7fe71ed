"""Each backend code and HTTP status becomes one typed error that says what to do, no secret."""

from __future__ import annotations

import email.utils
import pickle
import time
from typing import Any

import httpx
import pytest

from worker.nemo import (
    BackendUnavailable,
    ClientIdMissing,
    ExportBlocked,
    MediaTooLarge,
    NemoError,
    OutOfCredits,
    PermanentError,
    ProtocolError,
    RateLimited,
    RecoverableError,
    RenderIdConflict,
    RenderNotFound,
    RequestRejected,
    RetryableError,
    SessionLost,
    TokenInvalid,
    UnsupportedMedia,
    errors,
)

from ._support import TOKEN, FakeBackend, answering, client_answering, sse_lines, sse_response


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (1001, TokenInvalid),
        (1010, TokenInvalid),
        (1011, TokenInvalid),
        (1002, SessionLost),
        (2001, OutOfCredits),
        (4001, UnsupportedMedia),
        (4002, MediaTooLarge),
        (9999, RequestRejected),
    ],
)
def test_http_200_with_nonzero_code_raises_the_error_of_that_code(
    code: int, expected: type[NemoError]
) -> None:
    with pytest.raises(expected) as raised:
        client_answering(200, {"code": code, "message": "nope", "data": None}).credits()
    assert raised.value.code == code
    assert raised.value.http_status == 200


@pytest.mark.parametrize(
    ("code", "expected"),
    [(1001, TokenInvalid), (1002, SessionLost), (2001, OutOfCredits), (4002, MediaTooLarge)],
)
def test_http_error_status_with_code_body_raises_the_error_of_that_code(
    code: int, expected: type[NemoError]
) -> None:
    with pytest.raises(expected):
        client_answering(400, {"code": code, "message": "nope"}).credits()


def test_success_false_envelope_with_code_raises_the_error_of_that_code() -> None:
    with pytest.raises(OutOfCredits):
        client_answering(200, {"success": False, "code": 2001, "error": "no credits"}).credits()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, TokenInvalid),
        (402, ExportBlocked),
        (413, MediaTooLarge),
        (415, UnsupportedMedia),
        (429, RateLimited),
        (500, BackendUnavailable),
        (502, BackendUnavailable),
        (503, BackendUnavailable),
        (418, RequestRejected),
    ],
)
def test_http_status_without_code_raises_the_error_of_that_status(
    status: int, expected: type[NemoError]
) -> None:
    with pytest.raises(expected) as raised:
        client_answering(status, {"message": "no"}).credits()
    assert raised.value.http_status == status
    assert raised.value.code is None


def test_http_200_with_code_2001_raises_out_of_credits_with_bind_link() -> None:
    backend = answering(200, {"code": 2001, "message": "Insufficient credits", "data": None})
    client = backend.client()
    client.user_id = "anon_42"
    with pytest.raises(OutOfCredits) as raised:
        client.credits()
    assert raised.value.bind_url == "https://nemovideo.com/register?bind=anon_42"
    assert "https://nemovideo.com/register?bind=anon_42" in str(raised.value)


def test_out_of_credits_takes_the_bind_link_the_backend_sends() -> None:
    body = {"code": 2001, "message": "x", "data": {"bind_url": "https://n.example/bind?u=1"}}
    with pytest.raises(OutOfCredits) as raised:
        client_answering(200, body).credits()
    assert raised.value.bind_url == "https://n.example/bind?u=1"


def test_out_of_credits_for_a_registered_user_has_no_bind_link() -> None:
    client = client_answering(200, {"code": 2001, "message": "Insufficient credits"})
    client.user_id = "user_7"
    with pytest.raises(OutOfCredits) as raised:
        client.credits()
    assert raised.value.bind_url is None


def test_session_creation_remembers_the_anonymous_user_for_the_bind_link() -> None:
    answers = iter(
        [
            httpx.Response(
                200,
                json={"code": 0, "data": {"task_id": "t", "session_id": "5", "user_id": "anon_9"}},
            ),
            httpx.Response(200, json={"code": 2001, "message": "Insufficient credits"}),
        ]
    )
    client = FakeBackend(lambda request: next(answers)).client()
    client.create_session()
    with pytest.raises(OutOfCredits) as raised:
        client.send_message("5", "hi")
    assert raised.value.bind_url == "https://nemovideo.com/register?bind=anon_9"


def test_http_400_on_the_token_call_raises_client_id_missing() -> None:
    with pytest.raises(ClientIdMissing):
        client_answering(400, {"detail": "X-Client-Id required"}).anonymous_token("")


def test_http_400_elsewhere_is_a_plain_rejection_not_a_client_id_problem() -> None:
    with pytest.raises(RequestRejected):
        client_answering(400, {"detail": "bad body"}).credits()


def test_run_sse_404_session_not_found_raises_session_lost() -> None:
    backend = answering(404, {"detail": "Session not found: 5529798706024415232"})
    with pytest.raises(SessionLost) as raised:
        backend.client().send_message("5529798706024415232", "hello")
    assert raised.value.http_status == 404


def test_export_with_an_already_used_render_id_raises_render_id_conflict() -> None:
    body = {"success": False, "error": "Render ID render_1 already exists"}
    with pytest.raises(RenderIdConflict):
        client_answering(400, body).export("render_1", "5", {"t": []})
    with pytest.raises(RenderIdConflict):
        client_answering(409, {"message": "conflict"}).export("render_1", "5", {"t": []})


def test_status_of_an_unknown_render_raises_render_not_found() -> None:
    with pytest.raises(RenderNotFound):
        client_answering(404, {"success": False, "error": "Render not found"}).render_status("r")
    with pytest.raises(RenderNotFound):
        client_answering(200, {"success": False, "error": "render not found"}).render_status("r")


@pytest.mark.parametrize("body", [b"<html>gateway</html>", b"{not json"])
def test_an_answer_that_is_not_json_raises_protocol_error(body: bytes) -> None:
    client = FakeBackend(lambda request: httpx.Response(200, content=body)).client()
    with pytest.raises(ProtocolError):
        client.credits()


def test_html_error_page_with_5xx_is_backend_unavailable_not_a_protocol_error() -> None:
    client = FakeBackend(
        lambda request: httpx.Response(502, content=b"<html>bad gw</html>")
    ).client()
    with pytest.raises(BackendUnavailable):
        client.credits()


def test_network_errors_and_timeouts_raise_backend_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def stall(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(BackendUnavailable, match="network error"):
        FakeBackend(refuse).client().credits()
    with pytest.raises(BackendUnavailable, match="timed out"):
        FakeBackend(stall).client().credits()
    with pytest.raises(BackendUnavailable):
        FakeBackend(refuse).client().send_message("5", "hi")


def test_rate_limited_carries_retry_after_in_seconds() -> None:
    with pytest.raises(RateLimited) as raised:
        client_answering(429, {"message": "slow"}, headers={"Retry-After": "12"}).credits()
    assert raised.value.retry_after == 12.0
    assert "12 s" in str(raised.value)


def test_rate_limited_reads_an_http_date_retry_after() -> None:
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    with pytest.raises(RateLimited) as raised:
        client_answering(429, {}, headers={"Retry-After": when}).credits()
    assert raised.value.retry_after is not None
    assert 50 <= raised.value.retry_after <= 61


def test_rate_limited_without_retry_after_says_to_wait_30_seconds() -> None:
    with pytest.raises(RateLimited) as raised:
        client_answering(429, None).credits()
    assert raised.value.retry_after is None
    assert "30 s" in str(raised.value)


def test_each_error_class_says_whether_retrying_as_is_can_help() -> None:
    assert RateLimited.retryable and BackendUnavailable.retryable
    for cls in (RecoverableError, PermanentError, TokenInvalid, SessionLost, OutOfCredits):
        assert cls.retryable is False
    assert issubclass(RateLimited, RetryableError)
    assert issubclass(TokenInvalid, RecoverableError)
    assert issubclass(ExportBlocked, PermanentError)


def test_the_module_docstring_draws_every_public_error_class() -> None:
    drawn = errors.__doc__ or ""
    classes = [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, NemoError)
    ]
    assert len(classes) >= 15
    for cls in classes:
        assert cls.__name__ in drawn


def test_every_error_message_says_what_to_do() -> None:
    with pytest.raises(NemoError) as raised:
        client_answering(200, {"code": 4001, "message": "bad type"}).credits()
    assert "What to do:" in str(raised.value)
    assert "mp4" in str(raised.value)


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"code": 1001, "message": f"token {TOKEN} expired", "data": {"token": TOKEN}}),
        (401, {"detail": f"Invalid Authorization: Bearer {TOKEN}"}),
        (500, {"code": 500, "message": f"internal error handling {TOKEN}"}),
        (200, {"success": False, "error": f"bad token nmv_usr_other999 and {TOKEN}"}),
        (429, {"message": f"rate limited for {TOKEN}"}),
    ],
)
def test_no_token_appears_in_any_error_text_or_repr(status: int, body: dict[str, Any]) -> None:
    with pytest.raises(NemoError) as raised:
        client_answering(status, body).credits()
    error = raised.value
    for text in (str(error), repr(error), error.message, str(error.args), error.server_message):
        assert TOKEN not in (text or "")
        assert "SECRET" not in (text or "")
        assert "nmv_usr_other999" not in (text or "")


def test_a_token_in_a_streamed_error_event_is_scrubbed() -> None:
    stream = sse_lines({"error": f"auth failed for {TOKEN}"})
    turn = FakeBackend(lambda request: sse_response(stream)).client().send_message("5", "hi")
    assert turn.error is not None
    assert TOKEN not in turn.error
    assert "***" in turn.error


def test_errors_survive_pickling_with_every_field() -> None:
    original = RateLimited("slow down", retry_after=7.0, code=None, server_message="later")
    copy = pickle.loads(pickle.dumps(original))
    assert type(copy) is RateLimited
    assert (copy.retry_after, copy.http_status, str(copy)) == (7.0, 429, str(original))
    credits = pickle.loads(pickle.dumps(OutOfCredits(bind_url="https://b/x")))
    assert credits.bind_url == "https://b/x" and credits.code == 2001
