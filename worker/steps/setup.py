"""The first steps: a token for the job, a backend session, and its media uploaded."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.settings import get_settings
from worker.nemo import UploadedMedia
from worker.outcomes import Advance, Fail, Outcome
from worker.runner import StepContext


def token_step(context: StepContext) -> Outcome:
    """The runner has already resolved (and if need be acquired) the token; record its kind."""
    return Advance(
        checkpoint={"token_source": context.token.source, "account": context.token.account},
        message=f"using the {context.token.source} backend token",
    )


def session_step(context: StepContext) -> Outcome:
    if context.checkpoint.get("session_id"):
        return Advance(message="session already open")
    language = str(context.options.get("language") or "en")
    session = context.client.create_session(language=language)
    return Advance(
        checkpoint={"session_id": session.session_id, "task_id": session.task_id},
        message=f"session {session.session_id} opened",
    )


@dataclass(frozen=True)
class Medium:
    """One file the job uploads: a stored asset (by path) or a URL the backend fetches."""

    key: str
    path: Path | None
    url: str | None


def media_of(job_input: dict[str, Any]) -> list[Medium]:
    """Every medium of the job, images first, in the order given (the API stores them resolved:
    `{"asset_id", "path", ...}` or `{"url"}`)."""
    storage_dir = get_settings().storage_dir
    refs: list[Any] = [*(job_input.get("images") or []), *(job_input.get("clips") or [])]
    if job_input.get("music"):
        refs.append(job_input["music"])
    media: list[Medium] = []
    for ref in refs:
        if isinstance(ref, dict) and ref.get("url"):
            media.append(Medium(key=str(ref["url"]), path=None, url=str(ref["url"])))
        elif isinstance(ref, dict) and ref.get("path"):
            path = Path(ref["path"])
            path = path if path.is_absolute() else storage_dir / path
            media.append(Medium(key=str(ref.get("asset_id") or ref["path"]), path=path, url=None))
        elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
            media.append(Medium(key=ref, path=None, url=ref))
    return media


def upload_step(context: StepContext) -> Outcome:
    """Upload the media not yet uploaded: every stored file in one request, every URL in one
    more; each request's media are checkpointed as soon as the backend accepts them."""
    session_id = str(context.checkpoint["session_id"])
    uploads: dict[str, dict[str, object]] = dict(context.checkpoint.get("uploads") or {})
    missing = [medium for medium in media_of(context.input) if medium.key not in uploads]
    for medium in missing:
        if medium.path is not None and not medium.path.exists():
            return Fail(
                "asset_missing",
                f"The file of asset {medium.key} is missing from storage; upload it again.",
            )
    files = _unique([m for m in missing if m.path is not None])
    urls = _unique([m for m in missing if m.path is None])
    if files:
        paths = [m.path for m in files if m.path is not None]
        _record(uploads, files, context.client.upload_files(session_id, paths))
        context.save(uploads=uploads)
    if urls:
        _record(uploads, urls, context.client.upload_urls(session_id, [str(m.url) for m in urls]))
        context.save(uploads=uploads)
    return Advance(message=f"{len(uploads)} media uploaded")


def _unique(media: list[Medium]) -> list[Medium]:
    """Each medium once, even when a job names the same asset twice."""
    seen: dict[str, Medium] = {}
    for medium in media:
        seen.setdefault(medium.key, medium)
    return list(seen.values())


def _record(
    uploads: dict[str, dict[str, object]], sent: list[Medium], answered: list[UploadedMedia]
) -> None:
    """The backend answers one file per part, in order; a shorter answer leaves the rest blank."""
    for index, medium in enumerate(sent):
        media = answered[index] if index < len(answered) else None
        uploads[medium.key] = {
            "file_type": media.file_type if media else None,
            "cdn_url": media.cdn_url if media else None,
        }
