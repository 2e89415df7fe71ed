"""Agent events in the two shapes of nemo-api.md (ADK and the vendor's `type`) and SSE framing."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from emulator.config import EventShape

AUTHOR = "nemo_agent"
KEEPALIVE_COMMENT = b": keep-alive\n\n"


def sse(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


@dataclass
class EventWriter:
    """Builds the framed events of one turn in the configured shape."""

    shape: EventShape
    invocation_id: str

    @classmethod
    def new(cls, shape: EventShape) -> EventWriter:
        return cls(shape, "e-" + uuid.uuid4().hex)

    def _adk(self, parts: list[dict[str, Any]], *, partial: bool = False, **extra: Any) -> bytes:
        event: dict[str, Any] = {
            "id": uuid.uuid4().hex[:8],
            "invocationId": self.invocation_id,
            "author": AUTHOR,
            "timestamp": time.time(),
            "content": {"role": "model", "parts": parts},
            "actions": {"stateDelta": extra.pop("state_delta", {}), "artifactDelta": {}},
        }
        if partial:
            event["partial"] = True
        return sse(event)

    def function_call(self, call_id: str, name: str, args: dict[str, Any]) -> bytes:
        if self.shape == "vendor":
            return sse({"type": "tool_call", "name": name, "args": args})
        return self._adk([{"functionCall": {"id": call_id, "name": name, "args": args}}])

    def function_response(self, call_id: str, name: str, response: dict[str, Any]) -> bytes:
        if self.shape == "vendor":
            return sse({"type": "tool_result", "name": name, "result": response})
        part = {"functionResponse": {"id": call_id, "name": name, "response": response}}
        return self._adk([part], state_delta={"draft_updated": True})

    def text(self, text: str, *, partial: bool) -> bytes:
        if self.shape == "vendor":
            return b"" if partial else sse({"type": "text", "content": text})
        return self._adk([{"text": text}], partial=partial)

    def error(self, message: str) -> bytes:
        return sse({"error": message})

    def keepalive(self) -> bytes:
        if self.shape == "vendor":
            return sse({"type": "heartbeat"})
        return KEEPALIVE_COMMENT


def text_chunks(text: str, size: int = 40) -> list[str]:
    """Partial chunks of `text`, split on word boundaries near `size` characters."""
    chunks: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) > size and current:
            chunks.append(current + " ")
            current = word
        else:
            current = candidate
    if current:
        chunks.append(current)
    return chunks
