"""Every error the NemoVideo client raises, one tree; callers catch the branch they mean.

    NemoError                      code, http_status, retryable, message
     ├── RetryableError            retry the same call later (retryable = True)
     │    ├── RateLimited          HTTP 429; retry_after seconds or None (then wait 30 s)
     │    └── BackendUnavailable   HTTP 5xx, network errors, timeouts
     ├── RecoverableError          fix one thing first, then retry (retryable = False)
     │    ├── TokenInvalid         code 1001, 1010, 1011, HTTP 401: re-acquire the token
     │    ├── ClientIdMissing      HTTP 400 on the anonymous-token call: make a client id
     │    ├── SessionLost          code 1002, /run_sse 404 "Session not found": new session
     │    ├── OutOfCredits         code 2001; bind_url for anonymous users, else None
     │    ├── RenderIdConflict     the render id was already used: ask its status
     │    └── OutputExpired        a download refused (401/403/404/410): ask for a fresh URL
     └── PermanentError            the same request fails the same way (retryable = False)
          ├── UnsupportedMedia     code 4001, HTTP 415
          ├── MediaTooLarge        code 4002, HTTP 413
          ├── ExportBlocked        HTTP 402: the plan tier forbids export (not credits)
          ├── RenderNotFound       no render has that id
          ├── RequestRejected      any other refusal (unknown code, other 4xx)
          └── ProtocolError        an answer this client cannot read

Every answer (HTTP status, `code` in an HTTP 200 body, envelope, stream event) is turned into
one of these by one classifier (`_classify.classify`): a 429 is `RateLimited` wherever it came.

Messages are built from backend codes and scrubbed server text only: no token ever appears in
an error's str, repr or args.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "ACCEPTED_FORMATS",
    "BackendUnavailable",
    "ClientIdMissing",
    "ExportBlocked",
    "MediaTooLarge",
    "NemoError",
    "OutOfCredits",
    "OutputExpired",
    "PermanentError",
    "ProtocolError",
    "RateLimited",
    "RecoverableError",
    "RenderIdConflict",
    "RenderNotFound",
    "RequestRejected",
    "RetryableError",
    "SessionLost",
    "TokenInvalid",
    "UnsupportedMedia",
    "scrub",
]

ACCEPTED_FORMATS = "mp4, mov, avi, webm, mkv, jpg, png, gif, webp, mp3, wav, m4a, aac"

_TOKEN_RE = re.compile(r"nmv_[A-Za-z0-9_\-.~+/=]*")
_BEARER_RE = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-.~+/=]+")
_MAX_SERVER_TEXT = 300


def scrub(text: object, secrets: Iterable[str | None] = ()) -> str:
    """Server-provided text made safe to show: tokens and bearer values masked, length capped."""
    out = str(text)
    for secret in secrets:
        if secret and len(secret) >= 6:
            out = out.replace(secret, "***")
    out = _TOKEN_RE.sub("nmv_***", out)
    out = _BEARER_RE.sub(r"\1***", out)
    if len(out) > _MAX_SERVER_TEXT:
        out = out[: _MAX_SERVER_TEXT - 3] + "..."
    return out


class NemoError(Exception):
    """Base of every client error; `message` says what happened and what to do."""

    retryable: bool = False
    advice: str = "check the request"

    def __init__(
        self,
        what: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.code = code
        self.http_status = http_status
        self.server_message = scrub(server_message) if server_message else None
        self.message = self._compose(scrub(what))
        super().__init__(self.message)

    def _compose(self, what: str) -> str:
        where = []
        if self.http_status is not None:
            where.append(f"HTTP {self.http_status}")
        if self.code is not None:
            where.append(f"code {self.code}")
        text = what
        if where:
            text += f" ({', '.join(where)})"
        if self.server_message and self.server_message not in what:
            text += f": {self.server_message}"
        return f"{text}. What to do: {self.advice}."

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, http_status={self.http_status!r}, "
            f"message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by state (Celery may ship errors between processes), keeping every field."""
        return (_rebuild, (type(self), dict(self.__dict__)))


def _rebuild(cls: type[NemoError], state: dict[str, Any]) -> NemoError:
    error = cls.__new__(cls)
    Exception.__init__(error, state.get("message", ""))
    error.__dict__.update(state)
    return error


class RetryableError(NemoError):
    """The same call may succeed later."""

    retryable = True
    advice = "retry later with backoff"


class RateLimited(RetryableError):
    """HTTP 429."""

    def __init__(
        self,
        what: str = "The backend is rate limiting requests",
        *,
        retry_after: float | None = None,
        code: int | None = None,
        http_status: int | None = 429,
        server_message: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        wait = f"{retry_after:g} s" if retry_after is not None else "30 s"
        self.advice = f"wait {wait} (Retry-After), slow the shared rate limiter and retry"
        super().__init__(what, code=code, http_status=http_status, server_message=server_message)


class BackendUnavailable(RetryableError):
    """HTTP 5xx, network errors and timeouts."""

    advice = "retry with backoff; fail the job after the attempt limit"


class RecoverableError(NemoError):
    """Retrying as is fails again; one corrective action first makes it work."""


class TokenInvalid(RecoverableError):
    advice = (
        "re-acquire the anonymous token once and retry; "
        "a registered token that fails is a configuration error"
    )


class ClientIdMissing(RecoverableError):
    advice = "send an X-Client-Id (a UUID of at most 64 characters) and retry once"


class SessionLost(RecoverableError):
    advice = "create a new session, replay the uploads and resend the prompt"


class OutOfCredits(RecoverableError):
    """Code 2001; `bind_url` is the registration link for an anonymous user."""

    def __init__(
        self,
        what: str = "The account is out of credits",
        *,
        bind_url: str | None = None,
        code: int | None = 2001,
        http_status: int | None = None,
        server_message: str | None = None,
    ) -> None:
        self.bind_url = bind_url
        if bind_url:
            self.advice = f"pause the work and register or top up at {bind_url}"
        else:
            self.advice = "pause the work until credits are added to the account"
        super().__init__(what, code=code, http_status=http_status, server_message=server_message)


class RenderIdConflict(RecoverableError):
    advice = "ask the status of that render id before posting again with a new id"


class OutputExpired(RecoverableError):
    """A download of the render's output was refused: a signed URL that expired, most likely."""

    advice = "ask the render's status again for a fresh output URL, then download it"


class PermanentError(NemoError):
    """Retrying cannot help."""

    advice = "fail the job with this message"


class UnsupportedMedia(PermanentError):
    advice = f"use one of the accepted formats: {ACCEPTED_FORMATS}"


class MediaTooLarge(PermanentError):
    advice = "trim or compress the file to at most 200 MB"


class ExportBlocked(PermanentError):
    advice = "the plan tier forbids export (not a credits problem): upgrade the plan"


class RenderNotFound(PermanentError):
    advice = "export again with a new render id"


class RequestRejected(PermanentError):
    advice = "fix the request; the backend refused it"


class ProtocolError(PermanentError):
    advice = "check NEMO_API_BASE points at a NemoVideo backend; report it if it persists"
