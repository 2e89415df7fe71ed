"""Where a job's stored video or poster is on disk, refusing any path outside STORAGE_DIR."""

import logging
from pathlib import Path
from typing import Any

from core.storage import Storage

log = logging.getLogger(__name__)


def output_file(storage: Storage, output: dict[str, Any] | None, key: str) -> Path | None:
    """The file named by `output[key]` (`path` or `poster_path`), or None when there is none,
    it lies outside storage (logged: a row that points elsewhere is never served) or is gone."""
    stored = (output or {}).get(key)
    if not stored:
        return None
    path = Path(stored)
    if not path.is_absolute():
        path = storage.root / path
    if not storage.contains(path):
        log.error("an output path is outside STORAGE_DIR; refusing to serve it")
        return None
    return path if path.is_file() else None
