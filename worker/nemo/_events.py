"""What one `/run_sse` data line means, in either event shape, and what a whole turn produced.

ADK events carry `content.parts[]` (`text`, `functionCall`, `functionResponse`, `partial`);
the vendor's own events carry `type` (`text`, `tool_call`, `tool_result`, `heartbeat`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

from ._classify import Call, classify, code_of
from .errors import NemoError, scrub

EventKind = Literal["text", "tool_call", "tool_result", "keepalive", "error", "other"]


@dataclass(frozen=True)
class ToolCall:
    name: str
    args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class ToolResult:
    name: str
    result: Any = None
    id: str | None = None


@dataclass(frozen=True)
class TurnEvent:
    """One thing that happened in the stream, handed to `on_event` as it arrives."""

    kind: EventKind
    text: str | None = None
    partial: bool = False
    tool_call: ToolCall | None = None
    tool_result: ToolResult | None = None
    error: str | None = None
    failure: NemoError | None = None
    """An error event with a code: what the same code means anywhere else (1001, 2001...)."""


@dataclass
class TurnResult:
    """A whole turn: the stream read to its close, its deadline, or its cut."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_results: list[ToolResult] = field(default_factory=list)
    keepalives: int = 0
    events: int = 0
    error: str | None = None
    failure: NemoError | None = None
    """The first in-stream error that carried a code (or status), classified."""
    cut: bool = False
    deadline_hit: bool = False
    elapsed_s: float = 0.0

    @property
    def has_text(self) -> bool:
        return bool(self.text.strip())

    @property
    def needs_verification(self) -> bool:
        """No text, a cut, an in-stream error or the deadline: check the state for the result."""
        return not self.has_text or self.cut or self.deadline_hit or self.error is not None


class TurnCollector:
    """Accumulates events into a `TurnResult`: full texts win over partial chunks."""

    def __init__(self) -> None:
        self.result = TurnResult()
        self._full: list[str] = []
        self._partial: list[str] = []

    def add(self, event: TurnEvent) -> None:
        result = self.result
        if event.kind == "keepalive":
            result.keepalives += 1
            return
        if event.kind == "text" and event.text:
            (self._partial if event.partial else self._full).append(event.text)
        elif event.kind == "tool_call" and event.tool_call:
            result.tool_calls.append(event.tool_call)
        elif event.kind == "tool_result" and event.tool_result:
            result.tool_results.append(event.tool_result)
        elif event.kind == "error" and event.error:
            result.error = event.error if result.error is None else f"{result.error}; {event.error}"
            if result.failure is None and event.failure is not None:
                result.failure = event.failure

    def finish(self) -> TurnResult:
        self.result.text = "".join(self._full) if self._full else "".join(self._partial)
        return self.result


def interpret(
    data: str, secrets: tuple[str | None, ...] = (), *, sse_event: str = ""
) -> list[TurnEvent]:
    """The events one `data:` payload stands for; an empty payload is a keep-alive.

    `sse_event` is the SSE `event:` field: `error` makes the payload an error, whatever it holds.
    """
    if not data.strip():
        if sse_event == "error":
            return [TurnEvent("error", error="error event in the stream")]
        return [TurnEvent("keepalive")]
    try:
        payload = json.loads(data)
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        if sse_event == "error":
            return [TurnEvent("error", error=scrub(data, secrets))]
        return [TurnEvent("other")]
    failed = _failure(payload, secrets, sse_event)
    if failed is not None:
        return [failed]
    content = payload.get("content")
    if isinstance(payload.get("type"), str) and not isinstance(content, dict):
        return [_vendor_event(payload, secrets)]
    if isinstance(content, dict):
        return _adk_events(payload, content) or [TurnEvent("other")]
    return [TurnEvent("other")]


def _failure(
    payload: dict[str, Any], secrets: tuple[str | None, ...], sse_event: str
) -> TurnEvent | None:
    """An error event: `error` set, a non-zero `code`, `type: error` or `event: error`; one with
    a code is classified like the same code anywhere else."""
    code = code_of(payload)
    error = payload.get("error") or payload.get("errorMessage") or payload.get("error_message")
    is_error = (
        bool(error)
        or (code is not None and code not in (0, 200))
        or sse_event == "error"
        or str(payload.get("type") or "").lower() == "error"
    )
    if not is_error:
        return None
    if isinstance(error, dict):
        error = error.get("message") or json.dumps(error)
    text = error or _first_str(payload, "message", "content", "text") or "error in stream"
    failure = None
    if code is not None and code not in (0, 200):
        failure = classify(Call.MESSAGE, http_status=None, body=payload, secrets=secrets)
    return TurnEvent("error", error=scrub(text, secrets), failure=failure)


def _vendor_event(payload: dict[str, Any], secrets: tuple[str | None, ...]) -> TurnEvent:
    kind = payload["type"].lower()
    partial = bool(payload.get("partial"))
    if kind in ("text", "message", "text_delta", "delta"):
        text = _first_str(payload, "content", "text", "delta")
        return TurnEvent("text", text=text, partial=partial or kind.endswith("delta"))
    if kind in ("tool_call", "function_call", "tool_use"):
        call = ToolCall(
            name=str(payload.get("name") or ""),
            args=_args(payload.get("args", payload.get("arguments", payload.get("input")))),
            id=payload.get("id"),
        )
        return TurnEvent("tool_call", tool_call=call)
    if kind in ("tool_result", "function_result", "function_response"):
        result = ToolResult(
            name=str(payload.get("name") or ""),
            result=payload.get("result", payload.get("output", payload.get("response"))),
            id=payload.get("id"),
        )
        return TurnEvent("tool_result", tool_result=result)
    if kind in ("heartbeat", "ping", "keepalive", "keep_alive"):
        return TurnEvent("keepalive")
    return TurnEvent("other")


def _adk_events(payload: dict[str, Any], content: dict[str, Any]) -> list[TurnEvent]:
    partial = bool(payload.get("partial"))
    from_user = content.get("role") == "user"
    events: list[TurnEvent] = []
    for part in content.get("parts") or []:
        if not isinstance(part, dict):
            continue
        call = part.get("functionCall") or part.get("function_call")
        response = part.get("functionResponse") or part.get("function_response")
        if isinstance(call, dict):
            events.append(
                TurnEvent(
                    "tool_call",
                    tool_call=ToolCall(
                        name=str(call.get("name") or ""),
                        args=_args(call.get("args")),
                        id=call.get("id"),
                    ),
                )
            )
        elif isinstance(response, dict):
            events.append(
                TurnEvent(
                    "tool_result",
                    tool_result=ToolResult(
                        name=str(response.get("name") or ""),
                        result=response.get("response"),
                        id=response.get("id"),
                    ),
                )
            )
        elif isinstance(part.get("text"), str) and not from_user and not part.get("thought"):
            events.append(TurnEvent("text", text=part["text"], partial=partial))
    return events


def _first_str(payload: dict[str, Any], *keys: str) -> str | None:
    for key in keys:
        if isinstance(payload.get(key), str):
            return str(payload[key])
    return None


def _args(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {"raw": value}
    return value if isinstance(value, dict) else {}
