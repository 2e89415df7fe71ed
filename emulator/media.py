"""Uploaded media: received in chunks to disk, typed by content (magic bytes), probed with PyAV."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import unquote, urlparse

import filetype
import httpx

from emulator.state import MediaFile

ACCEPTED: dict[str, str] = {
    "mp4": "video",
    "mov": "video",
    "avi": "video",
    "webm": "video",
    "mkv": "video",
    "jpg": "image",
    "png": "image",
    "gif": "image",
    "webp": "image",
    "mp3": "audio",
    "wav": "audio",
    "m4a": "audio",
    "aac": "audio",
}
ACCEPTED_LIST = ", ".join(ACCEPTED)
HEAD_BYTES = 8192


class UnsupportedType(Exception):
    """Content outside the accepted list (code 4001)."""


class TooLarge(Exception):
    """A file over the size limit (code 4002)."""


class UrlRefused(Exception):
    """A URL whose host is not allowed or that could not be fetched."""


@dataclass
class ReceivedFile:
    """A file being written to a temporary path, hashed and measured as it arrives."""

    filename: str
    path: Path
    limit: int
    size: int = 0
    head: bytes = b""
    too_large: bool = False
    _hash: hashlib._Hash = field(default_factory=hashlib.sha256)
    _handle: IO[bytes] | None = None

    @classmethod
    def open(cls, tmp_dir: Path, filename: str, limit: int) -> ReceivedFile:
        tmp_dir.mkdir(parents=True, exist_ok=True)
        path = tmp_dir / f"upload-{secrets.token_hex(8)}"
        received = cls(filename=filename, path=path, limit=limit)
        received._handle = path.open("wb")
        return received

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.too_large or self.size > self.limit:
            self.too_large = True
            return
        if len(self.head) < HEAD_BYTES:
            self.head += chunk[: HEAD_BYTES - len(self.head)]
        self._hash.update(chunk)
        assert self._handle is not None
        self._handle.write(chunk)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def discard(self) -> None:
        self.close()
        self.path.unlink(missing_ok=True)

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def sniff(head: bytes) -> tuple[str, str]:
    """(extension, file type) judged by content; UnsupportedType outside the accepted list."""
    kind = filetype.guess(head)
    extension = kind.extension if kind else None
    if extension not in ACCEPTED:
        detected = kind.mime if kind else "unknown content"
        raise UnsupportedType(f"detected {detected}")
    return extension, ACCEPTED[extension]


def _probe(path: Path, file_type: str) -> tuple[str, float, int, int, float]:
    """(file type, duration s, width, height, fps); a video with no picture is audio."""
    if file_type == "image":
        from PIL import Image

        with Image.open(path) as image:
            return "image", 0.0, image.width, image.height, 0.0
    import av

    try:
        with av.open(str(path)) as container:
            duration = (container.duration or 0) / 1_000_000
            if container.streams.video:
                stream = container.streams.video[0]
                fps = float(stream.average_rate or 0)
                return "video", duration, stream.width, stream.height, fps
            if container.streams.audio:
                return "audio", duration, 0, 0, 0.0
    except av.error.FFmpegError as exc:
        raise UnsupportedType(f"unreadable media: {exc}") from exc
    raise UnsupportedType("no audio or video stream")


async def store(received: ReceivedFile, media_dir: Path) -> MediaFile:
    """Type, probe and keep a received file under its content hash."""
    received.close()
    if received.too_large:
        received.discard()
        raise TooLarge(f"{received.filename} is over {received.limit // (1024 * 1024)} MB")
    try:
        extension, file_type = sniff(received.head)
        file_type, duration, width, height, fps = await asyncio.to_thread(
            _probe, received.path, file_type
        )
    except UnsupportedType:
        received.discard()
        raise
    media_dir.mkdir(parents=True, exist_ok=True)
    target = media_dir / f"{received.sha256[:32]}.{extension}"
    if target.exists():
        received.discard()
    else:
        os.replace(received.path, target)
    return MediaFile(
        media_id=received.sha256[:32],
        filename=received.filename,
        file_type=file_type,
        extension=extension,
        path=target,
        duration=round(duration, 3),
        width=width,
        height=height,
        fps=round(fps, 3),
    )


def url_allowed(url: str, allowed_hosts: tuple[str, ...]) -> bool:
    """Loopback always; other hosts only when listed (or "*" listed)."""
    parsed = urlparse(url)
    host = parsed.hostname or ""
    if parsed.scheme not in ("http", "https") or not host:
        return False
    if "*" in allowed_hosts or host in allowed_hosts or host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def fetch(url: str, tmp_dir: Path, limit: int, allowed: tuple[str, ...]) -> ReceivedFile:
    """Stream a URL to a temporary file (no redirects, so the host check holds)."""
    if not url_allowed(url, allowed):
        raise UrlRefused(f"host not allowed: {url}")
    filename = unquote(Path(urlparse(url).path).name) or "download"
    received = ReceivedFile.open(tmp_dir, filename, limit)
    try:
        async with (
            httpx.AsyncClient(timeout=30.0) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise UrlRefused(f"fetching {url} answered HTTP {response.status_code}")
            async for chunk in response.aiter_bytes(256 * 1024):
                received.write(chunk)
                if received.too_large:
                    break
    except httpx.HTTPError as exc:
        received.discard()
        raise UrlRefused(f"fetching {url} failed: {exc}") from exc
    except UrlRefused:
        received.discard()
        raise
    return received
