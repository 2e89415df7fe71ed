"""Request bodies read as a stream: counted against the byte limit as they arrive, hashed on
the way, and kept in a spooled file (memory for small ones, disk beyond) for a streaming parser.

So a body costs the API `SPOOL_MEMORY_BYTES` of memory however large it is, and no more than
`PARSE_CONCURRENCY` bodies are parsed at once per process, whatever the number of clients.
"""

import asyncio
import hashlib
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO

from fastapi import Request

from api.errors import ApiError

SPOOL_MEMORY_BYTES = 1024 * 1024
PARSE_CONCURRENCY = 4

_parsing: dict[int, asyncio.Semaphore] = {}


def too_large(limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"the body is larger than the limit of {limit} bytes; split it into several requests",
    )


@dataclass
class SpooledBody:
    file: IO[bytes]
    size: int
    sha256: str
    """Of the prefix given to `spooled_body` and then the body."""


@asynccontextmanager
async def spooled_body(request: Request, limit: int, prefix: bytes) -> AsyncIterator[SpooledBody]:
    """The body in a file positioned at its start; 413 at the first byte past `limit`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    digest = hashlib.sha256(prefix)
    size = 0
    with tempfile.SpooledTemporaryFile(SPOOL_MEMORY_BYTES, prefix="nemo-body-") as file:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            digest.update(chunk)
            file.write(chunk)
        file.seek(0)
        yield SpooledBody(file=file, size=size, sha256=digest.hexdigest())


@asynccontextmanager
async def parse_slot() -> AsyncIterator[None]:
    """One of the process's few parsing places (per event loop), waited for in turn."""
    loop = id(asyncio.get_running_loop())
    semaphore = _parsing.setdefault(loop, asyncio.Semaphore(PARSE_CONCURRENCY))
    async with semaphore:
        yield
