"""Batches that name local files: upload each file once and put its asset id in its place.

The API takes asset ids or URLs in `images`, `clips` and `music`; a CSV or JSON file written by
hand names files beside it (`images/mug.jpg`). Anything already an id or a URL is left alone.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

MEDIA_COLUMNS = ("images", "clips", "music")
LIST_COLUMNS = frozenset({"images", "clips"})

Uploader = Callable[[Path], str]
"""Uploads one file and returns its asset id."""


class LocalFileError(Exception):
    """A batch names a local file that is not there."""


def is_remote_ref(value: str) -> bool:
    """An asset id or an http(s) URL: nothing to upload."""
    if value.startswith(("http://", "https://")):
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


class MediaResolver:
    """Resolves references relative to `base`, uploading each distinct file once."""

    def __init__(self, base: Path, upload: Uploader) -> None:
        self.base = base
        self.upload = upload
        self.uploaded: dict[Path, str] = {}

    def resolve(self, value: str, where: str) -> str:
        value = value.strip()
        if not value or is_remote_ref(value):
            return value
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self.base / path
        path = path.resolve()
        if not path.is_file():
            raise LocalFileError(
                f"{where}: {value!r} is neither an asset id, a URL nor a file (looked for {path})"
            )
        if path not in self.uploaded:
            self.uploaded[path] = self.upload(path)
        return self.uploaded[path]


def resolve_csv(text: str, resolver: MediaResolver) -> str:
    """The CSV with every local file in a media column replaced by its asset id."""
    rows = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    if not rows:
        return text
    names = [name.strip().lower() for name in rows[0]]
    columns = [(index, name) for index, name in enumerate(names) if name in MEDIA_COLUMNS]
    for line, row in enumerate(rows[1:], start=2):
        for index, name in columns:
            if index >= len(row) or not row[index].strip():
                continue
            where = f"line {line}, column {name}"
            parts = row[index].split("|") if name in LIST_COLUMNS else [row[index]]
            row[index] = "|".join(resolver.resolve(part, where) for part in parts if part.strip())
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def resolve_json(body: dict[str, Any], resolver: MediaResolver) -> dict[str, Any]:
    """The JSON batch with every local file in items' media fields replaced by its asset id."""
    items = body.get("items")
    if not isinstance(items, list):
        return body
    for number, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        for name in MEDIA_COLUMNS:
            value = item.get(name)
            where = f"items[{number}].{name}"
            if isinstance(value, list):
                item[name] = [
                    resolver.resolve(ref, where) if isinstance(ref, str) else ref for ref in value
                ]
            elif isinstance(value, str):
                item[name] = resolver.resolve(value, where)
    return body
