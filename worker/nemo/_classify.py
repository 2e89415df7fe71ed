"""One classifier: every answer the backend can give becomes one typed error.

An HTTP status, a `code` in the body of an HTTP 200, a failed envelope and an error event inside
the `/run_sse` stream all pass through `classify`, so one meaning (429, 1001, 2001...) always
becomes the same error class whichever place it came from, and the policy table needs one row.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Any
from urllib.parse import quote

from .errors import (
    BackendUnavailable,
    ClientIdMissing,
    ExportBlocked,
    MediaTooLarge,
    NemoError,
    OutOfCredits,
    OutputExpired,
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
_TOKEN_CODES = {1001, 1010, 1011}
_EXPIRED_URL_STATUSES = {401, 403, 404, 410}


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


def classify(
    call: Call,
    *,
    http_status: int | None,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    user_id: str | None = None,
    secrets: Iterable[str | None] = (),
) -> NemoError:
    """The error an answer stands for. A body `code` that is an HTTP status (400-599) means what
    that status means, so a 429 in an HTTP 200 body is rate limiting, as an HTTP 429 is."""
    payload = body if isinstance(body, dict) else {}
    code = code_of(payload)
    text = scrub(server_text(payload), secrets) or None
    lowered = (text or "").lower()
    common: dict[str, Any] = {"code": code, "http_status": http_status, "server_message": text}
    status = _effective_status(http_status, code)
    what = call.value

    if status == 429:
        wait = retry_after(headers or {})
        return RateLimited(
            f"{what}: the backend is rate limiting requests",
            retry_after=wait if wait is not None else _body_retry_after(payload),
            **common,
        )
    if code in _TOKEN_CODES or (status == 401 and call is not Call.DOWNLOAD):
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
    if status is not None and status >= 500:
        return BackendUnavailable(f"{what}: the backend failed", **common)
    if call is Call.DOWNLOAD and status in _EXPIRED_URL_STATUSES:
        return OutputExpired(f"{what}: the output URL was refused (expired?)", **common)
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
    if call in (Call.RENDER, Call.CANCEL) and (status == 404 or "not found" in lowered):
        return RenderNotFound(f"{what}: the backend knows no render with this id", **common)
    return RequestRejected(f"{what}: the backend refused the request", **common)


def _effective_status(http_status: int | None, code: int | None) -> int | None:
    if http_status is not None and http_status >= 400:
        return http_status
    if code is not None and 400 <= code <= 599:
        return code
    return http_status


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Retry-After in seconds (delta or HTTP date); None when absent or unreadable."""
    value = headers.get("retry-after") or headers.get("Retry-After")
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


def _body_retry_after(payload: dict[str, Any]) -> float | None:
    """A wait the body names (`retry_after`, `retryAfter`, in it or in `data`), in seconds."""
    data = payload.get("data")
    for source in (payload, data if isinstance(data, dict) else {}):
        for key in ("retry_after", "retryAfter", "retry_after_s"):
            value = source.get(key)
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                return float(value)
    return None


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


def code_of(payload: dict[str, Any]) -> int | None:
    """The backend code of a body (`code`, `error_code`, `errorCode`, or inside `error`)."""
    for key in ("code", "error_code", "errorCode", "status_code", "statusCode"):
        value = payload.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    error = payload.get("error")
    if isinstance(error, dict):
        return code_of(error)
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
