"""Read one file part out of a multipart request as it streams in, never whole in memory.

Starlette's form parser would spool the whole upload to a temporary file before the route sees
it; this reader hands the `file` part's bytes to `Storage.save_chunks` as they arrive, so the
size limit stops an oversized upload early and nothing is copied twice.
"""

from collections.abc import AsyncIterator, Iterator
from pathlib import PurePosixPath

import anyio.from_thread
from python_multipart.exceptions import ParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from api.errors import ApiError

FIELD = "file"


def _malformed(reason: str) -> ApiError:
    return ApiError(400, "malformed_multipart", f"the multipart body is malformed: {reason}")


class MultipartFileReader:
    """Pull the bytes of the part named `file` from a `multipart/form-data` request."""

    def __init__(self, request: Request) -> None:
        content_type, params = parse_options_header(request.headers.get("content-type"))
        if content_type != b"multipart/form-data":
            raise ApiError(
                415,
                "unsupported_media_type",
                "send the file as multipart/form-data in a part named `file`",
            )
        boundary = params.get(b"boundary")
        if not boundary:
            raise _malformed("the Content-Type has no boundary")
        self.filename: str | None = None
        self._stream: AsyncIterator[bytes] = request.stream().__aiter__()
        self._pending: list[bytes] = []
        self._headers: dict[str, str] = {}
        self._field = bytearray()
        self._value = bytearray()
        self._in_file = False
        self._file_seen = False
        self._file_done = False
        self._body_done = False
        self._parser = MultipartParser(
            boundary,
            {
                "on_part_begin": self._part_begin,
                "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._part_data,
                "on_part_end": self._part_end,
            },
        )

    def _part_begin(self) -> None:
        self._headers = {}

    def _header_end(self) -> None:
        # Kept as latin-1 (byte for byte): parse_options_header encodes it back, and the
        # filename's bytes are decoded as UTF-8 below.
        self._headers[self._field.decode("latin-1").lower()] = self._value.decode("latin-1")
        self._field.clear()
        self._value.clear()

    def _headers_finished(self) -> None:
        _, params = parse_options_header(self._headers.get("content-disposition"))
        if params.get(b"name") == FIELD.encode() and not self._file_seen:
            self._in_file = True
            self._file_seen = True
            raw = params.get(b"filename")
            self.filename = clean_filename(raw.decode("utf-8", "replace")) if raw else None

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if self._in_file:
            self._pending.append(data[start:end])

    def _part_end(self) -> None:
        if self._in_file:
            self._in_file = False
            self._file_done = True

    async def _feed(self) -> None:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._body_done = True
            self._parser.finalize()
            return
        try:
            self._parser.write(chunk)
        except ParseError as error:
            raise _malformed(str(error)) from None

    async def find_file(self) -> bool:
        """Advance to the `file` part; False when the body has none."""
        while not self._file_seen and not self._body_done:
            await self._feed()
        return self._file_seen

    async def read(self) -> bytes:
        """The next bytes of the file part; b"" once it has ended."""
        while not self._pending and not self._file_done:
            if self._body_done:
                raise _malformed("the body ended inside the file part")
            await self._feed()
        data = b"".join(self._pending)
        self._pending.clear()
        return data

    async def read_head(self, size: int) -> bytes:
        """At least `size` leading bytes of the file (fewer only if the file is shorter)."""
        head = bytearray()
        while len(head) < size and (chunk := await self.read()):
            head.extend(chunk)
        return bytes(head)

    def chunks_from_thread(self, head: bytes) -> Iterator[bytes]:
        """The whole file for a worker thread: `head`, then the rest pulled from the loop."""
        if head:
            yield head
        while chunk := anyio.from_thread.run(self.read):
            yield chunk


def clean_filename(name: str) -> str:
    """The last path segment, without control characters, at most 200 characters."""
    base = PurePosixPath(name.replace("\\", "/")).name
    cleaned = "".join(char for char in base if char.isprintable()).strip()
    return cleaned[-200:]
