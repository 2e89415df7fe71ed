"""Opaque cursors: base64url JSON the client passes back unchanged."""

import base64
import binascii
import json
from typing import Any

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
        raise ApiError(
            422,
            "invalid_cursor",
            "cursor is not valid; pass `next_cursor` from the previous page unchanged",
            [{"loc": "query.cursor", "message": "not a cursor from this list"}],
        )
    return position
