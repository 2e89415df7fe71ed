"""Unwrap every envelope the backend answers with, and turn each failure into one typed error.

Shapes accepted: `{"code", "message", "data"}` (code != 0 is an error even with HTTP 200),
`{"success", "data", "error"}`, an HTTP error status with a `{"code", "message"}` (or FastAPI
`{"detail"}`) body, and a bare JSON object.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable
from enum import Enum
from typing import Any
from urllib.parse import quote

import httpx

from .errors import (
    BackendUnavailable,
    ClientIdMissing,
    ExportBlocked,
    MediaTooLarge,
    NemoError,
    OutOfCredits,
    ProtocolError,
    RateLimited,
    RenderIdConflict,
    RenderNotFound,
    RequestRejected,
    SessionLost,
    TokenInvalid,
    UnsupportedMedia,
    scrub,
)

REGISTER_URL = "https://nemovideo.com/register?bind={user_id}"
_BIND_URL_RE = re.compile(r"https?://[^\s\"'<>]*register\?bind=[^\s\"'<>]+")


class Call(Enum):
    """Which endpoint answered: some statuses mean different things on different endpoints."""

    TOKEN = "anonymous token"
    SESSION = "create session"
    UPLOAD = "upload"
    CREDITS = "credits"
    STATE = "session state"
    MESSAGE = "send message"
    EXPORT = "export"
    RENDER = "render status"
    CANCEL = "cancel render"
    DOWNLOAD = "download"


_TOKEN_CODES = {1001, 1010, 1011}


def unwrap(
    response: httpx.Response,
    call: Call,
    *,
    user_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> Any:
    """The payload of a successful answer; raises the matching `NemoError` otherwise."""
    body = _json_body(response)
    if response.status_code >= 400:
        raise error_for(response.status_code, body, call, response.headers, user_id, secrets)
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
    code = _code_of(body)
    if code is not None:
        if code != 0:
            raise error_for(response.status_code, body, call, response.headers, user_id, secrets)
        return body.get("data")
    if isinstance(body.get("success"), bool):
        if not body["success"]:
            raise error_for(response.status_code, body, call, response.headers, user_id, secrets)
        return body.get("data")
    return body


def error_for_response(
    response: httpx.Response,
    call: Call,
    *,
    user_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> NemoError:
    """The error a failed answer stands for (its body must already be read)."""
    body = _json_body(response)
    return error_for(response.status_code, body, call, response.headers, user_id, secrets)


def error_for(
    status: int,
    body: Any,
    call: Call,
    headers: httpx.Headers,
    user_id: str | None,
    secrets: Iterable[str | None],
) -> NemoError:
    """One policy: the backend code decides first, then the HTTP status, then the endpoint."""
    payload = body if isinstance(body, dict) else {}
    code = _code_of(payload)
    text = scrub(server_text(payload), secrets) or None
    lowered = (text or "").lower()
    common: dict[str, Any] = {"code": code, "http_status": status, "server_message": text}
    what = call.value

    if status == 429:
        return RateLimited(
            f"{what}: the backend is rate limiting requests",
            retry_after=retry_after(headers),
            **common,
        )
    if code in _TOKEN_CODES:
        return TokenInvalid(f"{what}: the token is expired or invalid", **common)
    if code == 1002:
        return SessionLost(f"{what}: the backend no longer knows this session", **common)
    if code == 2001:
        return OutOfCredits(
            f"{what}: the account is out of credits",
            bind_url=_bind_url(payload, text, user_id),
            **common,
        )
    if code == 4001 or status == 415:
        return UnsupportedMedia(f"{what}: the file type is not supported", **common)
    if code == 4002 or status == 413:
        return MediaTooLarge(f"{what}: the file is larger than 200 MB", **common)
    if status >= 500:
        return BackendUnavailable(f"{what}: the backend failed", **common)
    if status == 401:
        return TokenInvalid(f"{what}: the token is expired or invalid", **common)
    if status == 402:
        return ExportBlocked(f"{what}: export is blocked by the plan tier", **common)
    if status == 400 and call is Call.TOKEN:
        return ClientIdMissing(f"{what}: the X-Client-Id header is missing or invalid", **common)
    if call is Call.EXPORT and (status == 409 or _says_already_used(lowered)):
        return RenderIdConflict(f"{what}: this render id was already used", **common)
    if call is Call.MESSAGE and status == 404:
        return SessionLost(f"{what}: the backend no longer knows this session", **common)
    if "session not found" in lowered:
        return SessionLost(f"{what}: the backend no longer knows this session", **common)
    if call in (Call.RENDER, Call.CANCEL, Call.DOWNLOAD) and (
        status == 404 or "not found" in lowered
    ):
        return RenderNotFound(f"{what}: the backend knows no render with this id", **common)
    return RequestRejected(f"{what}: the backend refused the request", **common)


def retry_after(headers: httpx.Headers) -> float | None:
    """Retry-After in seconds (delta or HTTP date); None when absent or unreadable."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def server_text(payload: dict[str, Any]) -> str:
    """The human text a body carries, whichever key it chose."""
    for key in ("message", "error", "detail", "msg", "error_message", "errorMessage"):
        value = payload.get(key)
        if isinstance(value, dict):
            value = value.get("message") or value.get("detail") or json.dumps(value)
        elif isinstance(value, list):
            value = "; ".join(
                str(item.get("msg", item)) if isinstance(item, dict) else str(item)
                for item in value
            )
        if value:
            return str(value)
    return ""


def _code_of(payload: dict[str, Any]) -> int | None:
    for key in ("code", "error_code", "errorCode"):
        value = payload.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    error = payload.get("error")
    if isinstance(error, dict):
        return _code_of(error)
    return None


def _bind_url(payload: dict[str, Any], text: str | None, user_id: str | None) -> str | None:
    raw_data = payload.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    for source in (data, payload):
        for key in ("bind_url", "bindUrl", "register_url", "registerUrl"):
            if isinstance(source.get(key), str) and source[key]:
                return str(source[key])
    found = _BIND_URL_RE.search(text or "")
    if found:
        return found.group(0)
    anon = data.get("user_id") or data.get("userId") or user_id
    if isinstance(anon, str) and anon.startswith("anon_"):
        return REGISTER_URL.format(user_id=quote(anon, safe=""))
    return None


def _says_already_used(lowered: str) -> bool:
    return "already" in lowered or "duplicate" in lowered or "conflict" in lowered


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
