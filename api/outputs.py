"""The storage key of a job's stored video or poster, refusing any location outside the store."""

import logging
from typing import Any

from core.storage import InvalidKey, Storage

log = logging.getLogger(__name__)


def output_key(storage: Storage, output: dict[str, Any] | None, field: str) -> str | None:
    """The key of the object `output[field]` names (`path` or `poster_path`), or None when
    there is none or it lies outside the store (logged: such a row is never served)."""
    stored = (output or {}).get(field)
    if not stored:
        return None
    try:
        return storage.key_of(str(stored))
    except InvalidKey:
        log.error("an output lies outside the store; refusing to serve it")
        return None
