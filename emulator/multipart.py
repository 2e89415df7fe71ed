"""Streaming multipart reader: file parts go to disk chunk by chunk, never whole in memory."""

from __future__ import annotations

from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from emulator.media import ReceivedFile


class MalformedUpload(Exception):
    """Not a multipart body the emulator can read."""


class _Collector:
    def __init__(self, tmp_dir: Path, limit: int) -> None:
        self.tmp_dir = tmp_dir
        self.limit = limit
        self.files: list[ReceivedFile] = []
        self._current: ReceivedFile | None = None
        self._field = b""
        self._value = b""
        self._headers: dict[bytes, bytes] = {}

    def on_part_begin(self) -> None:
        self._headers = {}
        self._current = None

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._field.lower()] = self._value
        self._field = self._value = b""

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        filename = params.get(b"filename")
        if filename is not None:
            name = filename.decode("utf-8", "replace") or "upload"
            self._current = ReceivedFile.open(self.tmp_dir, name, self.limit)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current is not None:
            self._current.write(data[start:end])

    def on_part_end(self) -> None:
        if self._current is not None:
            self._current.close()
            self.files.append(self._current)
            self._current = None

    def discard(self) -> None:
        for received in self.files:
            received.discard()
        if self._current is not None:
            self._current.discard()


async def receive_files(request: Request, tmp_dir: Path, limit: int) -> list[ReceivedFile]:
    """Every part with a filename, each in its own temporary file."""
    _, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if not boundary:
        raise MalformedUpload("multipart body without a boundary")
    collector = _Collector(tmp_dir, limit)
    callbacks = {
        "on_part_begin": collector.on_part_begin,
        "on_header_field": collector.on_header_field,
        "on_header_value": collector.on_header_value,
        "on_header_end": collector.on_header_end,
        "on_headers_finished": collector.on_headers_finished,
        "on_part_data": collector.on_part_data,
        "on_part_end": collector.on_part_end,
    }
    parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except Exception as exc:
        collector.discard()
        raise MalformedUpload(f"unreadable multipart body: {exc}") from exc
    return collector.files
