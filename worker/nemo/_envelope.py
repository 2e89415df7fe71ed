"""Unwrap every envelope the backend answers with; a failure goes to the one classifier.

Shapes accepted: `{"code", "message", "data"}` (code != 0 is an error even with HTTP 200),
`{"success", "data", "error"}`, `{"status": "success", "data"}` (also `data: null`), an HTTP
error status with a `{"code", "message"}` (or FastAPI `{"detail"}`) body, and a bare JSON object.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import httpx

from ._classify import Call, classify, code_of
from .errors import NemoError, ProtocolError

__all__ = ["Call", "error_for_response", "unwrap"]

_FAILED_STATUS_WORDS = {"error", "fail", "failure"}


def unwrap(
    response: httpx.Response,
    call: Call,
    *,
    user_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> Any:
    """The payload of a successful answer; raises the matching `NemoError` otherwise."""
    body = _json_body(response)

    def failed() -> NemoError:
        return classify(
            call,
            http_status=response.status_code,
            body=body,
            headers=response.headers,
            user_id=user_id,
            secrets=secrets,
        )

    if response.status_code >= 400:
        raise failed()
    if response.status_code >= 300:
        raise ProtocolError(
            f"{call.value}: the backend redirected instead of answering",
            http_status=response.status_code,
        )
    if body is _NOT_JSON:
        if not response.content:
            return None
        raise ProtocolError(
            f"{call.value}: the backend answered something that is not JSON",
            http_status=response.status_code,
        )
    if not isinstance(body, dict):
        return body
    code = code_of(body)
    if code is not None:
        if code not in (0, 200):
            raise failed()
        return body.get("data")
    if isinstance(body.get("success"), bool):
        if not body["success"]:
            raise failed()
        return body.get("data")
    status = body.get("status")
    if isinstance(status, str) and "data" in body:
        if status.strip().lower() in _FAILED_STATUS_WORDS:
            raise failed()
        if status.strip().lower() in ("success", "ok"):
            return body["data"]
    return body


def error_for_response(
    response: httpx.Response,
    call: Call,
    *,
    user_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> NemoError:
    """The error a failed answer stands for (its body must already be read)."""
    return classify(
        call,
        http_status=response.status_code,
        body=_json_body(response),
        headers=response.headers,
        user_id=user_id,
        secrets=secrets,
    )


class _NotJson:
    """Marker for a body that is not JSON."""


_NOT_JSON = _NotJson()


def _json_body(response: httpx.Response) -> Any:
    if not response.content:
        return _NOT_JSON
    try:
        return json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        return _NOT_JSON
