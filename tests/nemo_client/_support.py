"""A fake backend for the client's unit tests: a handler per request, every request recorded."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import httpx

from worker.nemo import NemoClient

BASE = "https://nemo.test"
TOKEN = "nmv_usr_SECRET0123456789abcdef"

Handler = Callable[[httpx.Request], httpx.Response]


class FakeBackend:
    """Answers with `handler` and keeps every request, body read, for assertions."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.handler(request)

    def client(self, **kwargs: Any) -> NemoClient:
        kwargs.setdefault("token", TOKEN)
        return NemoClient(BASE, transport=httpx.MockTransport(self), **kwargs)


def answering(status: int = 200, body: Any = None, **kwargs: Any) -> FakeBackend:
    """A backend that answers every request with one JSON body."""
    return FakeBackend(lambda request: httpx.Response(status, json=body, **kwargs))


def client_answering(status: int = 200, body: Any = None, **kwargs: Any) -> NemoClient:
    return answering(status, body, **kwargs).client()


def ok(data: Any) -> dict[str, Any]:
    """Envelope 1, the emulator's for all but render."""
    return {"code": 0, "message": "success", "data": data}


def sse_lines(*events: Any) -> bytes:
    """`data: <json>` events separated by blank lines; str items are sent as raw lines."""
    out = []
    for event in events:
        out.append(event if isinstance(event, str) else f"data: {json.dumps(event)}\n\n")
    return "".join(out).encode()


def sse_response(body: bytes | Iterable[bytes], status: int = 200) -> httpx.Response:
    content: bytes | Iterator[bytes] = body if isinstance(body, bytes) else iter(body)
    return httpx.Response(status, headers={"content-type": "text/event-stream"}, content=content)
