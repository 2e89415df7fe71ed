"""A turn of /run_sse is read to its close in either event shape, and never past its deadline."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from worker.nemo import ProtocolError, SessionLost, TokenInvalid, TurnEvent, TurnResult

from ._support import FakeBackend, sse_lines, sse_response


def _turn(body: bytes | Iterator[bytes], **kwargs: Any) -> tuple[TurnResult, FakeBackend]:
    backend = FakeBackend(lambda request: sse_response(body))
    return backend.client().send_message("5529", "make a video", **kwargs), backend


def adk(*parts: dict, partial: bool = False, role: str = "model") -> dict:
    event = {
        "id": "e",
        "invocationId": "i",
        "author": "nemo_agent",
        "timestamp": 1.0,
        "content": {"role": role, "parts": list(parts)},
        "actions": {"stateDelta": {}},
    }
    if partial:
        event["partial"] = True
    return event


def test_the_message_is_posted_as_an_adk_run_request_accepting_an_event_stream() -> None:
    _, backend = _turn(sse_lines(adk({"text": "ok"})))
    request = backend.requests[0]
    assert request.url.path == "/run_sse"
    assert request.headers["accept"] == "text/event-stream"
    assert json.loads(request.content) == {
        "app_name": "nemo_agent",
        "user_id": "me",
        "session_id": "5529",
        "new_message": {"parts": [{"text": "make a video"}]},
    }


def test_adk_partial_chunks_are_superseded_by_the_full_text_event() -> None:
    body = sse_lines(
        adk({"text": "Your video "}, partial=True),
        adk({"text": "is ready."}, partial=True),
        adk({"text": "Your video is ready."}),
    )
    turn, _ = _turn(body)
    assert turn.text == "Your video is ready."
    assert turn.has_text and not turn.needs_verification
    assert not turn.cut and not turn.deadline_hit and turn.error is None
    assert turn.events == 3


def test_only_partial_chunks_are_joined_into_the_text() -> None:
    body = sse_lines(adk({"text": "Hel"}, partial=True), adk({"text": "lo"}, partial=True))
    turn, _ = _turn(body)
    assert turn.text == "Hello"


def test_adk_tool_calls_and_results_are_collected_in_order() -> None:
    body = sse_lines(
        adk(
            {
                "functionCall": {
                    "id": "c1",
                    "name": "generate_video_with_seedance",
                    "args": {"prompt": "city"},
                }
            }
        ),
        adk(
            {
                "functionResponse": {
                    "id": "c1",
                    "name": "generate_video_with_seedance",
                    "response": {"ok": True},
                }
            },
            role="user",
        ),
        adk({"functionCall": {"id": "c2", "name": "generate_music", "args": {}}}),
        adk({"text": "Done."}),
    )
    turn, _ = _turn(body)
    assert [call.name for call in turn.tool_calls] == [
        "generate_video_with_seedance",
        "generate_music",
    ]
    assert turn.tool_calls[0].args == {"prompt": "city"}
    assert turn.tool_calls[0].id == "c1"
    assert turn.tool_results[0].name == "generate_video_with_seedance"
    assert turn.tool_results[0].result == {"ok": True}
    assert turn.text == "Done."


def test_the_users_own_message_echoed_back_is_not_taken_as_the_reply() -> None:
    turn, _ = _turn(sse_lines(adk({"text": "make a video"}, role="user"), adk({"text": "Sure."})))
    assert turn.text == "Sure."


def test_a_turn_with_tool_calls_only_has_no_text_and_needs_verification() -> None:
    body = sse_lines(adk({"functionCall": {"name": "edit_multitrack", "args": {}}}))
    turn, _ = _turn(body)
    assert turn.text == "" and not turn.has_text
    assert turn.needs_verification
    assert not turn.cut


def test_vendor_type_events_are_read_like_adk_events() -> None:
    body = sse_lines(
        {"type": "heartbeat"},
        {"type": "tool_call", "name": "generate_video_with_seedance", "args": {"p": 1}},
        {"type": "tool_result", "name": "generate_video_with_seedance", "result": {"url": "u"}},
        {"type": "text", "content": "Your video "},
        {"type": "text", "content": "is ready."},
    )
    turn, _ = _turn(body)
    assert turn.text == "Your video is ready."
    assert [call.name for call in turn.tool_calls] == ["generate_video_with_seedance"]
    assert turn.tool_calls[0].args == {"p": 1}
    assert turn.tool_results[0].result == {"url": "u"}
    assert turn.keepalives == 1


def test_comment_lines_empty_data_and_heartbeats_count_as_keepalives() -> None:
    body = sse_lines(
        ": keep-alive\n\n",
        "data:\n\n",
        ": ping\n",
        "\n",
        {"type": "heartbeat"},
        adk({"text": "ok"}),
    )
    turn, _ = _turn(body)
    assert turn.keepalives == 4
    assert turn.text == "ok"


def test_a_comment_split_across_chunks_is_counted_once() -> None:
    turn, _ = _turn(
        iter([b"da", b"ta: {}\n\n:", b" ping\n\n", b'data: {"type":', b'"heartbeat"}\n\n'])
    )
    assert turn.keepalives == 2


def test_an_in_stream_error_is_reported_not_raised() -> None:
    body = sse_lines(adk({"text": "Working"}, partial=True), {"error": "model overloaded"})
    turn, _ = _turn(body)
    assert turn.error == "model overloaded"
    assert turn.needs_verification
    assert not turn.cut


def test_every_event_is_handed_to_on_event_as_it_arrives() -> None:
    seen: list[TurnEvent] = []
    body = sse_lines(
        ": hi\n\n",
        adk({"functionCall": {"name": "generate_music", "args": {}}}),
        adk({"text": "ok"}),
    )
    _turn(body, on_event=seen.append)
    assert [event.kind for event in seen] == ["keepalive", "tool_call", "text"]


def test_a_stream_cut_mid_turn_returns_cut_instead_of_raising() -> None:
    def body() -> Iterator[bytes]:
        yield sse_lines(adk({"functionCall": {"name": "edit_multitrack", "args": {}}}))
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")

    turn, _ = _turn(body())
    assert turn.cut
    assert not turn.deadline_hit
    assert [call.name for call in turn.tool_calls] == ["edit_multitrack"]
    assert turn.needs_verification


def test_a_read_timeout_mid_stream_is_a_cut() -> None:
    def body() -> Iterator[bytes]:
        yield b": ping\n\n"
        raise httpx.ReadTimeout("no chunk for 60 s")

    turn, _ = _turn(body())
    assert turn.cut and turn.keepalives == 1


class _KeepAlivesForever(httpx.SyncByteStream):
    """A stream that never ends by itself and records being closed, as a socket would be."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for _ in range(500):
            time.sleep(0.02)
            yield b": keep-alive\n\n"

    def close(self) -> None:
        self.closed = True


def test_the_wall_clock_deadline_closes_a_stream_that_only_sends_keepalives() -> None:
    stream = _KeepAlivesForever()
    backend = FakeBackend(
        lambda request: httpx.Response(
            200, headers={"content-type": "text/event-stream"}, stream=stream
        )
    )
    started = time.monotonic()
    turn = backend.client().send_message("5", "hi", deadline_s=0.3)
    elapsed = time.monotonic() - started
    assert turn.deadline_hit
    assert not turn.cut
    assert 0.3 <= elapsed < 3.0
    assert turn.keepalives >= 1
    assert stream.closed


def test_the_deadline_also_stops_a_stream_of_events_and_keeps_what_arrived() -> None:
    def body() -> Iterator[bytes]:
        yield sse_lines(adk({"functionCall": {"name": "generate_music", "args": {}}}))
        for index in range(400):
            time.sleep(0.02)
            yield sse_lines(adk({"text": f"{index} "}, partial=True))

    turn, _ = _turn(body(), deadline_s=0.3)
    assert turn.deadline_hit
    assert [call.name for call in turn.tool_calls] == ["generate_music"]
    assert turn.text.startswith("0 1 ")


def test_a_json_envelope_error_instead_of_a_stream_raises_its_error() -> None:
    backend = FakeBackend(lambda request: httpx.Response(200, json={"code": 1001, "message": "x"}))
    with pytest.raises(TokenInvalid):
        backend.client().send_message("5", "hi")
    backend = FakeBackend(lambda request: httpx.Response(200, json={"code": 1002, "message": "x"}))
    with pytest.raises(SessionLost):
        backend.client().send_message("5", "hi")


def test_a_json_success_instead_of_a_stream_is_a_protocol_error() -> None:
    backend = FakeBackend(lambda request: httpx.Response(200, json={"code": 0, "data": {}}))
    with pytest.raises(ProtocolError):
        backend.client().send_message("5", "hi")


def test_a_stream_without_an_event_stream_content_type_is_still_read() -> None:
    body = sse_lines(adk({"text": "ok"}))
    backend = FakeBackend(lambda request: httpx.Response(200, content=body))
    assert backend.client().send_message("5", "hi").text == "ok"


def test_unparseable_data_lines_are_skipped() -> None:
    turn, _ = _turn(sse_lines("data: not json\n\n", "data: [1]\n\n", adk({"text": "ok"})))
    assert turn.text == "ok"
    assert turn.error is None
