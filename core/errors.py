"""Input a user must correct, found by core code shared by the API and the worker.

The API answers an `InputError` with its status and the usual error body; the worker stores its
message where the user will look (a schedule's `last_error`).
"""

from collections.abc import Iterable, Sequence
from typing import Any

MAX_DETAILS = 100


class InputError(Exception):
    """A status for the API, a stable code, a message naming the first problem, and every
    problem as `{"loc": ..., "message": ...}`."""

    def __init__(
        self,
        message: str,
        details: Sequence[dict[str, Any]] = (),
        code: str = "validation_error",
        status: int = 422,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = list(details)
        self.code = code
        self.status = status


def invalid(
    details: Sequence[dict[str, Any]], code: str = "validation_error", status: int = 422
) -> InputError:
    """An `InputError` whose message names the first problem and counts the rest."""
    shown = list(details[:MAX_DETAILS])
    first = shown[0]
    message = f"{first['loc']}: {first['message']}" if first.get("loc") else first["message"]
    if len(details) > 1:
        message += f" (and {len(details) - 1} more problem{'s' if len(details) > 2 else ''})"
    return InputError(message, shown, code, status)


def loc_path(parts: Iterable[str | int]) -> str:
    """('items', 3, 'images', 0) -> 'items[3].images[0]'."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
