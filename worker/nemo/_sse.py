"""Reading one turn of `/run_sse` to its close, under our own wall-clock deadline.

httpx's read timeout bounds the wait for each chunk, not the turn; so the deadline is checked
on every chunk received (keep-alive comments included), and hitting it closes the stream.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from httpx_sse import EventSource, SSEError, connect_sse

from ._envelope import Call, error_for_response, unwrap
from ._events import TurnCollector, TurnEvent, TurnResult, interpret
from .errors import ProtocolError

log = logging.getLogger("worker.nemo")

OnEvent = Callable[[TurnEvent], None]

_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class _DeadlineHit(Exception):
    """Raised inside the chunk loop when the turn's wall-clock deadline has passed."""


class _WatchedResponse:
    """The response as `EventSource` reads it: deadline checked and comments counted per chunk.

    httpx-sse drops `: comment` lines before they reach us, so keep-alive comments are counted
    here, on the raw text, where a comment-only stream still advances.
    """

    def __init__(self, response: httpx.Response, deadline: float, on_comment: Callable[[], None]):
        self._response = response
        self._deadline = deadline
        self._on_comment = on_comment
        self._line_head = ""
        headers = httpx.Headers(response.headers)
        if "text/event-stream" not in headers.get("content-type", ""):
            headers["content-type"] = "text/event-stream"
        self.headers = headers

    def iter_text(self) -> Iterator[str]:
        for chunk in self._response.iter_text():
            if time.monotonic() >= self._deadline:
                raise _DeadlineHit
            lines = _LINE_BREAK.split(self._line_head + chunk)
            self._line_head = lines.pop()[:1]
            for line in lines:
                if line.startswith(":"):
                    self._on_comment()
            yield chunk


def read_turn(
    response: httpx.Response,
    *,
    deadline: float,
    started: float,
    on_event: OnEvent | None = None,
    secrets: tuple[str | None, ...] = (),
) -> TurnResult:
    """Collect the turn; a network error mid-stream sets `cut`, the deadline `deadline_hit`."""
    collector = TurnCollector()

    def emit(event: TurnEvent) -> None:
        collector.add(event)
        if on_event is not None:
            on_event(event)

    watched = _WatchedResponse(response, deadline, lambda: emit(TurnEvent("keepalive")))
    source = EventSource(watched)  # type: ignore[arg-type]
    try:
        for sse in source.iter_sse():
            collector.result.events += 1
            for event in interpret(sse.data, secrets, sse_event=sse.event):
                emit(event)
            if time.monotonic() >= deadline:
                raise _DeadlineHit
    except _DeadlineHit:
        collector.result.deadline_hit = True
    except (httpx.TransportError, httpx.StreamError, SSEError) as exc:
        if time.monotonic() >= deadline:
            collector.result.deadline_hit = True
        else:
            collector.result.cut = True
            log.warning(
                "run_sse stream cut after %d events: %s",
                collector.result.events,
                type(exc).__name__,
            )
    finally:
        response.close()
    result = collector.finish()
    result.elapsed_s = time.monotonic() - started
    return result


def run_turn(
    http: httpx.Client,
    body: dict[str, Any],
    *,
    headers: dict[str, str],
    timeout: httpx.Timeout,
    deadline: float,
    on_event: OnEvent | None,
    user_id: str | None,
    secrets: tuple[str | None, ...],
) -> TurnResult:
    """POST /run_sse and read the turn; a refusal before the stream opens raises its error."""
    started = time.monotonic()
    with connect_sse(
        http, "POST", "/run_sse", json=body, headers=headers, timeout=timeout
    ) as source:
        response = source.response
        if response.status_code >= 300 or "json" in response.headers.get("content-type", ""):
            response.read()
            if response.status_code >= 300:
                raise error_for_response(response, Call.MESSAGE, user_id=user_id, secrets=secrets)
            unwrap(response, Call.MESSAGE, user_id=user_id, secrets=secrets)
            raise ProtocolError("send message: the backend answered JSON, not an event stream")
        return read_turn(
            response, deadline=deadline, started=started, on_event=on_event, secrets=secrets
        )
