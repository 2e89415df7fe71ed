"""`NemoClient`: one typed method per endpoint of the NemoVideo contract (shared/nemo-api.md)."""

from __future__ import annotations

import logging
import mimetypes
import os
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx

from ._download import save_to_file
from ._envelope import Call, unwrap
from ._events import TurnResult
from ._http import BackendHttp
from ._models import AnonymousToken, Credits, RenderStatus, Session, SessionState, UploadedMedia
from ._sse import OnEvent, run_turn
from .errors import BackendUnavailable, RateLimited

log = logging.getLogger("worker.nemo")

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
DEFAULT_OUTPUT = {"format": "mp4", "quality": "high"}
STREAM_DEADLINE_S = 900.0


def _seg(value: str) -> str:
    """A path segment, quoted so an id can never change the path."""
    return quote(str(value), safe="")


class NemoClient:
    """A synchronous client; one per process, made after the fork. Thread-safe like httpx.

    `before_request` runs before every outbound request (the shared rate limiter plugs in
    there); if it raises `TimeoutError`, the call raises `RateLimited` with its `retry_after`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        skill_source: str = "video-generator-ki-free",
        skill_version: str = "1.0.0",
        skill_platform: str = "unknown",
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
        before_request: Callable[[], None] | None = None,
        user_id: str | None = None,
    ) -> None:
        self._token = token
        self.user_id = user_id
        self._attribution = {
            "X-Skill-Source": skill_source,
            "X-Skill-Version": skill_version,
            "X-Skill-Platform": skill_platform,
        }
        self._timeout = timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout)
        self._before_request = before_request
        self._http = BackendHttp(base_url=base_url, timeout=self._timeout, transport=transport)

    @property
    def token(self) -> str | None:
        return self._token

    @token.setter
    def token(self, value: str | None) -> None:
        if value != self._token:
            self.user_id = None
        self._token = value

    def __repr__(self) -> str:
        return f"NemoClient(base_url={str(self._http.base_url)!r}, token_set={bool(self._token)})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NemoClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- endpoints -------------------------------------------------------------------------

    def anonymous_token(self, client_id: str) -> AnonymousToken:
        """A token for this installation's client id (the same id gets the same token)."""
        payload = self._call(
            "POST",
            "/api/auth/anonymous-token",
            Call.TOKEN,
            auth=False,
            headers={"X-Client-Id": client_id},
        )
        return AnonymousToken.parse(payload)

    def create_session(self, language: str = "en", task_name: str = "project") -> Session:
        payload = self._call(
            "POST",
            "/api/tasks/me/with-session/nemo_agent",
            Call.SESSION,
            json={"task_name": task_name, "language": language},
        )
        session = Session.parse(payload)
        if session.user_id:
            self.user_id = session.user_id
        return session

    def upload_files(
        self, session_id: str, paths: Sequence[str | os.PathLike[str]]
    ) -> list[UploadedMedia]:
        """Multipart `files` parts, streamed from the open files (never read into memory)."""
        with ExitStack() as stack:
            parts = []
            for path in paths:
                file = Path(path)
                mime = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                parts.append(("files", (file.name, stack.enter_context(file.open("rb")), mime)))
            payload = self._call("POST", self._upload_path(session_id), Call.UPLOAD, files=parts)
        return UploadedMedia.parse_list(payload)

    def upload_urls(self, session_id: str, urls: Iterable[str]) -> list[UploadedMedia]:
        body = {"urls": list(urls), "source_type": "url"}
        payload = self._call("POST", self._upload_path(session_id), Call.UPLOAD, json=body)
        return UploadedMedia.parse_list(payload)

    def credits(self) -> Credits:
        return Credits.parse(self._call("GET", "/api/credits/balance/simple", Call.CREDITS))

    def session_state(self, session_id: str) -> SessionState:
        path = f"/api/state/nemo_agent/me/{_seg(session_id)}/latest"
        return SessionState.parse(self._call("GET", path, Call.STATE))

    def send_message(
        self,
        session_id: str,
        text: str,
        *,
        deadline_s: float = STREAM_DEADLINE_S,
        on_event: OnEvent | None = None,
    ) -> TurnResult:
        """Send one message and read the turn until the stream closes or `deadline_s` passes.

        The wait for bytes is bounded by `deadline_s` only, never by the per-request timeout.
        Errors before the stream opens raise; a break mid-stream returns `cut=True`; an error
        event with a code inside the stream comes back classified as `failure`.
        """
        started = time.monotonic()
        deadline = started + deadline_s
        body = {
            "app_name": "nemo_agent",
            "user_id": "me",
            "session_id": session_id,
            "new_message": {"parts": [{"text": text}]},
        }
        # Silence is no reason to leave: a generation may send nothing for minutes, and a
        # client that leaves may cancel the agent's run. Only the turn's ceiling ends the wait.
        timeout = httpx.Timeout(
            connect=self._timeout.connect,
            read=deadline_s,
            write=self._timeout.write,
            pool=self._timeout.pool,
        )
        self._before()
        try:
            turn = run_turn(
                self._http,
                body,
                headers=self._headers(),
                timeout=timeout,
                deadline=deadline,
                on_event=on_event,
                **self._error_context(),
            )
        except httpx.TransportError as exc:
            raise self._unavailable(Call.MESSAGE, exc) from exc
        log.info(
            "run_sse session=%s events=%d keepalives=%d tools=%s text=%s cut=%s deadline=%s "
            "failure=%s in %.1fs",
            session_id,
            turn.events,
            turn.keepalives,
            [call.name for call in turn.tool_calls],
            turn.has_text,
            turn.cut,
            turn.deadline_hit,
            type(turn.failure).__name__ if turn.failure else None,
            turn.elapsed_s,
        )
        return turn

    def export(
        self,
        render_id: str,
        session_id: str,
        draft: Any,
        output: dict[str, Any] | None = None,
    ) -> RenderStatus:
        """Post a render under `render_id` (store the id first: a used id raises a conflict)."""
        body = {
            "id": render_id,
            "sessionId": session_id,
            "draft": draft,
            "output": output if output is not None else dict(DEFAULT_OUTPUT),
        }
        payload = self._call("POST", "/api/render/proxy/lambda", Call.EXPORT, json=body)
        return RenderStatus.parse(payload or {"id": render_id, "status": "pending"}, render_id)

    def render_status(self, render_id: str) -> RenderStatus:
        path = f"/api/render/proxy/lambda/{_seg(render_id)}"
        return RenderStatus.parse(self._call("GET", path, Call.RENDER), render_id)

    def cancel_render(self, render_id: str) -> None:
        self._call("POST", f"/api/render/proxy/lambda/{_seg(render_id)}/cancel", Call.CANCEL)

    def render_download_url(self, render_id: str) -> str:
        return str(self._absolute(f"/api/render/proxy/{_seg(render_id)}/download"))

    def download(self, url: str, dest_path: str | os.PathLike[str]) -> int:
        """Stream `url` (absolute, or relative to the base) into `dest_path`; the bytes written.

        Writes a `.part` file beside it and renames it at the end, so `dest_path` is whole or
        absent. Credentials go only to the backend's own origin, never to a CDN.
        """
        target = self._absolute(url)
        base = self._http.base_url
        same_origin = (target.scheme, target.host, target.port) == (
            base.scheme,
            base.host,
            base.port,
        )
        started = time.monotonic()
        self._before()
        try:
            written = save_to_file(
                self._http,
                target,
                Path(dest_path),
                headers=self._headers() if same_origin else {},
                **self._error_context(),
            )
        except httpx.TransportError as exc:
            raise self._unavailable(Call.DOWNLOAD, exc) from exc
        log.debug(
            "download %s: %d bytes in %.1f s", target.path, written, time.monotonic() - started
        )
        return written

    # -- plumbing --------------------------------------------------------------------------

    def _upload_path(self, session_id: str) -> str:
        return f"/api/upload-video/nemo_agent/me/{_seg(session_id)}"

    def _absolute(self, url: str) -> httpx.URL:
        return self._http.build_request("GET", url).url

    def _headers(self, *, auth: bool = True) -> dict[str, str]:
        headers = dict(self._attribution)
        if auth and self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    def _before(self) -> None:
        """Run the hook; a `TimeoutError` from it (the shared pacing said wait) is `RateLimited`."""
        if self._before_request is None:
            return
        try:
            self._before_request()
        except TimeoutError as exc:
            wait = getattr(exc, "retry_after", None)
            raise RateLimited(
                "The shared rate limiter has no request slot free",
                retry_after=float(wait) if isinstance(wait, int | float) else None,
                http_status=None,
            ) from exc

    def _error_context(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "secrets": (self._token,)}

    def _call(
        self,
        method: str,
        path: str,
        call: Call,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        json: Any = None,
        files: Any = None,
    ) -> Any:
        request_headers = self._headers(auth=auth) | (headers or {})
        self._before()
        started = time.monotonic()
        try:
            response = self._http.request(
                method, path, headers=request_headers, json=json, files=files
            )
        except httpx.TransportError as exc:
            raise self._unavailable(call, exc) from exc
        self._log(call, response, started)
        return unwrap(response, call, **self._error_context())

    def _unavailable(self, call: Call, exc: httpx.TransportError) -> BackendUnavailable:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "network error"
        log.warning("%s: %s (%s)", call.value, kind, type(exc).__name__)
        return BackendUnavailable(f"{call.value}: {kind} ({type(exc).__name__})")

    def _log(self, call: Call, response: httpx.Response, started: float) -> None:
        log.debug(
            "%s %s -> HTTP %d in %.0f ms",
            call.value,
            response.request.url.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
