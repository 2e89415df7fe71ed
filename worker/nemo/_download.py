"""Streaming a render's output to disk: whole or absent, never half a file under the final name."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import httpx

from ._envelope import Call, error_for_response

CHUNK_BYTES = 1 << 20


def save_to_file(
    http: httpx.Client,
    url: httpx.URL,
    dest: Path,
    *,
    headers: dict[str, str],
    user_id: str | None,
    secrets: Iterable[str | None],
) -> int:
    """GET `url` into a `.part` file beside `dest`, then rename it; the bytes written."""
    part = dest.with_name(f".{dest.name}.part")
    written = 0
    try:
        with http.stream("GET", url, headers=headers, follow_redirects=True) as response:
            if response.status_code >= 300:
                response.read()
                raise error_for_response(response, Call.DOWNLOAD, user_id=user_id, secrets=secrets)
            with part.open("wb") as file:
                for chunk in response.iter_bytes(CHUNK_BYTES):
                    file.write(chunk)
                    written += len(chunk)
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)
    return written
