"""Which media the backend accepts, recognised by content (magic bytes), not by file name.

The API sniffs uploads with this module and the worker can sniff downloaded URLs the same way,
so both agree on what is an image, a video or an audio file.
"""

from dataclasses import dataclass
from typing import Any

import filetype

SNIFF_BYTES = 8192
"""`filetype` reads at most this many leading bytes."""


@dataclass(frozen=True)
class MediaType:
    extension: str
    kind: str
    """image, video or audio."""
    content_type: str


ACCEPTED: dict[str, MediaType] = {
    media.extension: media
    for media in (
        MediaType("mp4", "video", "video/mp4"),
        MediaType("mov", "video", "video/quicktime"),
        MediaType("avi", "video", "video/x-msvideo"),
        MediaType("webm", "video", "video/webm"),
        MediaType("mkv", "video", "video/x-matroska"),
        MediaType("jpg", "image", "image/jpeg"),
        MediaType("png", "image", "image/png"),
        MediaType("gif", "image", "image/gif"),
        MediaType("webp", "image", "image/webp"),
        MediaType("mp3", "audio", "audio/mpeg"),
        MediaType("wav", "audio", "audio/wav"),
        MediaType("m4a", "audio", "audio/mp4"),
        MediaType("aac", "audio", "audio/aac"),
    )
}
"""The backend's accepted formats (nemo-api.md, upload), keyed by canonical extension."""

ACCEPTED_EXTENSIONS: tuple[str, ...] = tuple(ACCEPTED)

MEDIA_LISTS: tuple[str, ...] = ("images", "clips")
"""A job input's list-valued media fields; `music` is the one single medium."""


def job_media(job_input: dict[str, Any]) -> list[Any]:
    """Every medium of a job, in the order the backend gets them: images, clips, then music."""
    media: list[Any] = [ref for field in MEDIA_LISTS for ref in job_input.get(field) or []]
    if job_input.get("music"):
        media.append(job_input["music"])
    return media


_ALIASES = {"m4v": "mp4"}
"""`filetype` names some accepted containers differently."""


class UnsupportedMedia(ValueError):
    """The content is not one of the accepted formats."""

    def __init__(self, detected: str | None) -> None:
        found = f"looks like {detected}" if detected else "was not recognised"
        super().__init__(f"the file {found}; accepted formats: {', '.join(ACCEPTED_EXTENSIONS)}")
        self.detected = detected


def sniff(head: bytes) -> MediaType:
    """The media type of content starting with `head`, or raise `UnsupportedMedia`."""
    guess = filetype.guess(head[:SNIFF_BYTES])
    if guess is None:
        raise UnsupportedMedia(None)
    extension = _ALIASES.get(guess.extension, guess.extension)
    media = ACCEPTED.get(extension)
    if media is None:
        raise UnsupportedMedia(guess.mime)
    return media
