"""Typed results of the client, each read from whichever shape (camel or snake) the backend sent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .errors import ProtocolError, scrub

ANONYMOUS_TOKEN_LIFETIME = timedelta(days=7)


def pick(data: dict[str, Any], *keys: str, default: Any = None) -> Any:
    """The first of `keys` present with a value that is not None."""
    for key in keys:
        if data.get(key) is not None:
            return data[key]
    return default


def need_dict(payload: Any, what: str) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise ProtocolError(f"{what}: the backend answered without the expected object")
    return payload


def _opt_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _opt_int(value: Any) -> int | None:
    number = _opt_float(value)
    return round(number) if number is not None else None


@dataclass(frozen=True)
class AnonymousToken:
    """An anonymous token; the token itself never shows in a repr."""

    token: str = field(repr=False)
    user_id: str
    expires_at: datetime
    credits: int | None

    @classmethod
    def parse(cls, payload: Any) -> AnonymousToken:
        data = need_dict(payload, "anonymous token")
        token = pick(data, "token", "access_token", "accessToken")
        if not isinstance(token, str) or not token:
            raise ProtocolError("anonymous token: the answer carries no token")
        return cls(
            token=token,
            user_id=str(pick(data, "user_id", "userId", default="")),
            expires_at=_expiry(data),
            credits=_opt_int(pick(data, "credits")),
        )


def _expiry(data: dict[str, Any]) -> datetime:
    now = datetime.now(UTC)
    value = pick(data, "expires_at", "expiresAt")
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e12 else value
        return datetime.fromtimestamp(seconds, UTC)
    seconds_left = _opt_float(pick(data, "expires_in", "expiresIn"))
    if seconds_left is not None:
        return now + timedelta(seconds=seconds_left)
    return now + ANONYMOUS_TOKEN_LIFETIME


@dataclass(frozen=True)
class Session:
    task_id: str
    session_id: str
    user_id: str

    @classmethod
    def parse(cls, payload: Any) -> Session:
        data = need_dict(payload, "create session")
        session_id = pick(data, "session_id", "sessionId")
        if session_id is None or session_id == "":
            raise ProtocolError("create session: the answer carries no session id")
        return cls(
            task_id=str(pick(data, "task_id", "taskId", default="")),
            session_id=str(session_id),
            user_id=str(pick(data, "user_id", "userId", default="")),
        )


@dataclass(frozen=True)
class UploadedMedia:
    filename: str
    file_type: str
    cdn_url: str
    duration: float | None = None
    width: int | None = None
    height: int | None = None
    fps: float | None = None
    hash: str | None = None

    @classmethod
    def parse_list(cls, payload: Any) -> list[UploadedMedia]:
        files = payload
        if isinstance(payload, dict):
            files = pick(payload, "files", "media", "items", default=[])
        if not isinstance(files, list):
            raise ProtocolError("upload: the answer carries no list of files")
        return [cls.parse(item) for item in files]

    @classmethod
    def parse(cls, item: Any) -> UploadedMedia:
        data = need_dict(item, "upload")
        return cls(
            filename=str(pick(data, "filename", "fileName", "name", default="")),
            file_type=str(pick(data, "file_type", "fileType", "type", default="")),
            cdn_url=str(pick(data, "cdn_url", "cdnUrl", "url", default="")),
            duration=_opt_float(pick(data, "duration")),
            width=_opt_int(pick(data, "width")),
            height=_opt_int(pick(data, "height")),
            fps=_opt_float(pick(data, "fps")),
            hash=pick(data, "hash"),
        )


@dataclass(frozen=True)
class Credits:
    available: int
    frozen: int
    total: int

    @classmethod
    def parse(cls, payload: Any) -> Credits:
        data = need_dict(payload, "credits")
        available = _opt_int(pick(data, "available", "balance"))
        if available is None:
            raise ProtocolError("credits: the answer carries no available balance")
        frozen = _opt_int(pick(data, "frozen")) or 0
        total = _opt_int(pick(data, "total"))
        return cls(available, frozen, total if total is not None else available + frozen)


@dataclass(frozen=True)
class SessionState:
    """The session's state; the draft is opaque JSON, compared by its hash."""

    state: dict[str, Any] = field(repr=False)
    draft: dict[str, Any] | None = field(repr=False)
    video_infos: list[Any] = field(repr=False)
    generated_media: list[Any] = field(repr=False)
    session_id: str | None = None
    task_id: str | None = None

    @classmethod
    def parse(cls, payload: Any) -> SessionState:
        data = need_dict(payload, "session state")
        state = data.get("state")
        if isinstance(state, str):
            state = _json_or_none(state)
        if not isinstance(state, dict):
            state = data
        draft = pick(state, "draft")
        if isinstance(draft, str):
            draft = _json_or_none(draft)
        session_id = pick(data, "session_id", "sessionId")
        task_id = pick(data, "task_id", "taskId")
        return cls(
            state=state,
            draft=draft if isinstance(draft, dict) else None,
            video_infos=_as_list(pick(state, "video_infos", "videoInfos")),
            generated_media=_as_list(pick(state, "generated_media", "generatedMedia")),
            session_id=str(session_id) if session_id is not None else None,
            task_id=str(task_id) if task_id is not None else None,
        )

    @property
    def draft_hash(self) -> str:
        """sha256 of the draft's canonical JSON (sorted keys, no spaces); `null` when absent."""
        canonical = json.dumps(
            self.draft, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def media_count(self) -> int:
        return len(self.generated_media)

    @property
    def has_timeline(self) -> bool:
        """Ready to export: some track has a non-empty segment list."""
        tracks = (self.draft or {}).get("t")
        return isinstance(tracks, list) and any(
            isinstance(track, dict) and bool(track.get("sg")) for track in tracks
        )


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return []


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


RenderState = Literal["pending", "processing", "completed", "failed", "canceled", "unknown"]

_STATUS_WORDS: dict[str, RenderState] = {
    "pending": "pending",
    "queued": "pending",
    "waiting": "pending",
    "processing": "processing",
    "running": "processing",
    "rendering": "processing",
    "in_progress": "processing",
    "completed": "completed",
    "complete": "completed",
    "succeeded": "completed",
    "success": "completed",
    "done": "completed",
    "finished": "completed",
    "failed": "failed",
    "failure": "failed",
    "error": "failed",
    "errored": "failed",
    "timeout": "failed",
    "timed_out": "failed",
    "canceled": "canceled",
    "cancelled": "canceled",
}
_URL_KEYS = ("outputUrl", "output_url", "downloadUrl", "download_url", "url", "videoUrl")


def _first_url(value: Any) -> str | None:
    """A URL given as a string, an object with a URL key, or the first of a list of either."""
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, list):
        for item in value:
            found = _first_url(item)
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key in _URL_KEYS:
            found = _first_url(value.get(key))
            if found:
                return found
    return None


@dataclass(frozen=True)
class RenderStatus:
    id: str
    status: RenderState
    progress: int
    output_url: str | None = None
    error: str | None = None
    duration: float | None = None
    size: int | None = None

    @property
    def is_final(self) -> bool:
        return self.status in ("completed", "failed", "canceled")

    @property
    def succeeded(self) -> bool:
        return self.status == "completed"

    @classmethod
    def parse(cls, payload: Any, render_id: str) -> RenderStatus:
        """Reads every shape of nemo-api.md: `data.outputUrl`, `output.url`, top-level `taskId`,
        any URL key listed there, `output` as a string or a list; status words in any case.

        `id` is the render id the backend answered with (its own, if it assigned one)."""
        data = need_dict(payload, "render status")
        output = pick(data, "output", "outputs", default={})
        raw_status = str(pick(data, "status", "state", default="unknown")).strip().lower()
        error = pick(data, "error", "errorMessage", "error_message")
        if isinstance(error, dict):
            error = error.get("message") or json.dumps(error)
        progress = _opt_float(pick(data, "progress", default=0)) or 0.0
        details = output if isinstance(output, dict) else {}
        url = _first_url({k: data.get(k) for k in _URL_KEYS}) or _first_url(output)
        return cls(
            id=str(pick(data, "id", "taskId", "task_id", "renderId", "render_id") or render_id),
            status=_STATUS_WORDS.get(raw_status.replace(" ", "_").replace("-", "_"), "unknown"),
            progress=max(0, min(100, round(progress))),
            output_url=url,
            error=scrub(error) if error else None,
            duration=_opt_float(pick(details, "duration", default=pick(data, "duration"))),
            size=_opt_int(pick(details, "size", default=pick(data, "size"))),
        )
