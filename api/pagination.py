"""Opaque cursors: base64url JSON the client passes back unchanged."""

import base64
import binascii
import json
import uuid
from datetime import datetime
from typing import Any, Protocol

from api.errors import ApiError

MAX_LIMIT = 100
DEFAULT_LIMIT = 50


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keys: tuple[str, ...]) -> dict[str, Any]:
    """The position in `cursor`, or 422 when it was not made by `encode_cursor`."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        position = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        position = None
    if not isinstance(position, dict) or set(position) != set(keys):
        raise _invalid_cursor()
    return position


def _invalid_cursor() -> ApiError:
    return ApiError(
        422,
        "invalid_cursor",
        "cursor is not valid; pass `next_cursor` from the previous page unchanged",
        [{"loc": "query.cursor", "message": "not a cursor from this list"}],
    )


class Timestamped(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> uuid.UUID: ...


def encode_time_cursor(row: Timestamped) -> str:
    """A cursor at `row` for lists ordered by (created_at, id)."""
    return encode_cursor({"t": row.created_at.isoformat(), "id": str(row.id)})


def decode_time_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """The (created_at, id) position of a cursor from `encode_time_cursor`; None: first page."""
    if not cursor:
        return None
    position = decode_cursor(cursor, ("t", "id"))
    try:
        return datetime.fromisoformat(position["t"]), uuid.UUID(position["id"])
    except (TypeError, ValueError):
        raise _invalid_cursor() from None
