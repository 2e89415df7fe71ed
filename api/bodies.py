"""Request bodies parsed as they arrive: counted against the byte limit, hashed on the way,
and handed a chunk at a time to a streaming parser in a worker thread.

So a body costs the API a few chunks of memory however large it is, and its parser stops at
the first excess (too many items, a value too long). The rest of such a body is then read and
dropped (still counted against the byte limit) before the answer, so that a client sending it
sees the 422 rather than a connection cut under its upload. No more than `PARSE_CONCURRENCY`
bodies are parsed at once per process; the per-tenant write limits keep one tenant from taking
them all.
"""

import asyncio
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError

PARSE_CONCURRENCY = 4
"""Parsers hold the GIL while they validate: more at once would slow the event loop's own
answers (/healthz) more than they speed intake up."""
QUEUED_CHUNKS = 4
"""Chunks waiting for the parser: the backpressure that bounds a body's memory."""

Parsed = TypeVar("Parsed")

_parsing: dict[int, asyncio.Semaphore] = {}


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the body is larger than the limit of {limit} bytes; split it into several requests",
    )


class _ChunkPipe(io.RawIOBase):
    """The parser thread's end of an asyncio queue the event loop fills."""

    def __init__(self, loop: asyncio.AbstractEventLoop, chunks: asyncio.Queue[bytes]) -> None:
        self._loop = loop
        self._chunks = chunks
        self._rest = b""
        self._ended = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: "memoryview | bytearray") -> int:  # type: ignore[override]
        while not self._rest and not self._ended:
            chunk = asyncio.run_coroutine_threadsafe(self._chunks.get(), self._loop).result()
            self._rest, self._ended = chunk, not chunk
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


@dataclass
class StreamedBody:
    size: int
    sha256: str
    """Of the prefix given to `parse_streamed` and then the body."""


async def parse_streamed(
    request: Request, limit: int, prefix: bytes, parse: Callable[[IO[bytes]], Parsed]
) -> tuple[Parsed, StreamedBody]:
    """`parse(stream)` run in a thread while the body arrives; 413 at the first byte past
    `limit`, the parser's own error (a 422) as soon as the body has been read."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    loop = asyncio.get_running_loop()
    chunks: asyncio.Queue[bytes] = asyncio.Queue(QUEUED_CHUNKS)
    stream = io.BufferedReader(_ChunkPipe(loop, chunks), 64 * 1024)
    digest = hashlib.sha256(prefix)
    size = 0
    async with _parse_slot():
        parsing = asyncio.ensure_future(run_in_threadpool(parse, stream))
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise too_large(limit)
                if not parsing.done():
                    digest.update(chunk)
                    if chunk:
                        await _hand_over(chunks, chunk, parsing)
                # Else the body is refused already: the rest is only counted and dropped.
            if not parsing.done():
                await _hand_over(chunks, b"", parsing)
            parsed = await parsing
        finally:
            if not parsing.done():
                _end(chunks)
                await asyncio.wait([parsing])
                parsing.exception()  # the body was refused: the parser's ending is moot
    return parsed, StreamedBody(size=size, sha256=digest.hexdigest())


async def _hand_over(chunks: asyncio.Queue[bytes], chunk: bytes, parsing: asyncio.Future) -> None:
    """Queue a chunk for the parser, unless it stops reading (it finished or failed)."""
    put = asyncio.ensure_future(chunks.put(chunk))
    await asyncio.wait([put, parsing], return_when=asyncio.FIRST_COMPLETED)
    if not put.done():
        put.cancel()


def _end(chunks: asyncio.Queue[bytes]) -> None:
    """Make a parser still waiting see the end of the body."""
    while not chunks.empty():
        chunks.get_nowait()
    chunks.put_nowait(b"")


class _Slot:
    async def __aenter__(self) -> None:
        loop = id(asyncio.get_running_loop())
        self._semaphore = _parsing.setdefault(loop, asyncio.Semaphore(PARSE_CONCURRENCY))
        await self._semaphore.acquire()

    async def __aexit__(self, *_: object) -> None:
        self._semaphore.release()


def _parse_slot() -> _Slot:
    """One of the process's parsing places (per event loop), waited for in turn."""
    return _Slot()


async def read_body(request: Request, limit: int) -> bytes:
    """A small body whole (schedules), refusing more than `limit` bytes before reading them."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > limit:
            raise too_large(limit)
    return bytes(body)
