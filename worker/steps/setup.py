"""The first steps: a token for the job, a backend session, and its media uploaded."""

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from core.input_refs import ref_url
from core.media import job_media
from core.storage import ObjectMissing, open_storage
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
    """One file the job uploads: a stored object (an asset, or a URL fetched into storage) or
    a URL the backend fetches itself."""

    key: str
    object_key: str | None
    url: str | None


def media_of(job_input: dict[str, Any], fetched: dict[str, Any] | None = None) -> list[Medium]:
    """Every medium of the job, images first, in the order given (the API stores them resolved:
    `{"asset_id", "path", ...}` or `{"url"}`); a URL already fetched is its stored copy."""
    fetched = fetched or {}
    media: list[Medium] = []
    for ref in job_media(job_input):
        if url := ref_url(ref):
            copy = fetched.get(url)
            media.append(Medium(key=url, object_key=copy["key"] if copy else None, url=url))
        elif isinstance(ref, dict) and ref.get("path"):
            key = open_storage().key_of(str(ref["path"]))
            media.append(Medium(key=str(ref.get("asset_id") or key), object_key=key, url=None))
    return media


def upload_step(context: StepContext) -> Outcome:
    """Upload the media not yet uploaded: every stored file in one request, every URL in one
    more; each request's media are checkpointed as soon as the backend accepts them."""
    storage = open_storage()
    session_id = str(context.checkpoint["session_id"])
    uploads: dict[str, dict[str, object]] = dict(context.checkpoint.get("uploads") or {})
    media = media_of(context.input, context.checkpoint.get("fetched"))
    missing = [medium for medium in media if medium.key not in uploads]
    files = _unique([m for m in missing if m.object_key is not None])
    urls = _unique([m for m in missing if m.object_key is None])
    if files:
        with ExitStack() as stack:
            paths = []
            for medium in files:
                try:
                    paths.append(stack.enter_context(storage.local_file(str(medium.object_key))))
                except ObjectMissing:
                    return Fail(
                        "asset_missing",
                        f"The file of {medium.key} is missing from storage; upload it again.",
                    )
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
