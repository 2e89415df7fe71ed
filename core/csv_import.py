"""CSV batches: one product per row, turned into the same item dicts as a JSON batch.

Errors name the physical line (a quoted field may span lines) and the column.
"""

import csv
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO, Any

from core.errors import InputError, invalid

COLUMNS = ("ref", "title", "description", "images", "prompt")
OPTIONAL_COLUMNS = ("clips", "music", "aspect_ratio", "duration_s", "language")
LIST_COLUMNS = frozenset({"images", "clips"})
OPTION_COLUMNS = frozenset({"aspect_ratio", "duration_s", "language"})
MAX_FIELD_CHARS = 20_000
"""The longest value any column takes (a prompt)."""
MAX_LINE_BYTES = 256 * 1024
"""The longest physical line; a quoted value may span several."""
QUERY_FIELDS = (
    "name",
    "priority",
    "prompt_template",
    "webhook_url",
    "aspect_ratio",
    "duration_s",
    "language",
)


@dataclass
class CsvBatch:
    body: dict[str, Any]
    lines: list[int]
    """The line each item's row starts on."""

    def locate(self, loc: Sequence[str | int]) -> str:
        """A pydantic location in the assembled body, as the CSV's line and column."""
        if not loc:
            return "csv"
        if loc[0] == "items":
            if len(loc) < 2 or not isinstance(loc[1], int):
                return "rows"
            place = f"line {self.lines[loc[1]]}"
            fields = [part for part in loc[2:] if part != "options"]
            if fields:
                place += f", column {fields[0]}"
                if len(fields) > 1 and isinstance(fields[1], int):
                    place += f" (value {fields[1] + 1})"
            return place
        field = loc[-1] if loc[0] == "options" else loc[0]
        return f"query.{field}"


def _error(
    line: int | None, message: str, column: str | None = None, code: str = "invalid_csv"
) -> InputError:
    loc = f"line {line}" if line else "csv"
    if column:
        loc += f", column {column}"
    return invalid([{"loc": loc, "message": message}], code=code)


def _lines(stream: IO[bytes]) -> Iterator[str]:
    """The body's physical lines, decoded one by one (UTF-8 never splits a character across a
    newline), each at most `MAX_LINE_BYTES` long so that no row can fill memory."""
    number = 0
    while line := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            raise _error(
                number, f"the line is longer than {MAX_LINE_BYTES} bytes", code="value_too_large"
            )
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise _error(
                number, "the CSV is not UTF-8; save it as UTF-8 and send it again"
            ) from None
        yield text.removeprefix("\ufeff") if number == 1 else text


def _header(row: list[str]) -> list[str]:
    names = [name.strip().lower() for name in row]
    allowed = (*COLUMNS, *OPTIONAL_COLUMNS)
    unknown = [name or "(empty)" for name in names if name not in allowed]
    if unknown:
        raise _error(
            1,
            f"unknown column(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}",
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise _error(1, f"column(s) {', '.join(duplicated)} appear more than once")
    if "title" not in names and "prompt" not in names:
        raise _error(1, "the header needs a title or a prompt column")
    return names


def _item(names: list[str], cells: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    options: dict[str, str] = {}
    for name, raw in zip(names, cells, strict=False):
        value = raw.strip()
        if not value:
            continue
        if name in LIST_COLUMNS:
            item[name] = [part.strip() for part in value.split("|") if part.strip()]
        elif name in OPTION_COLUMNS:
            options[name] = value
        else:
            item[name] = value
    if options:
        item["options"] = options
    return item


def read_csv(
    body: bytes | IO[bytes], query: Callable[[str], str | None], max_rows: int | None = None
) -> CsvBatch:
    """Parse a CSV body row by row, and the batch fields in the query string, into a batch
    body; more than `max_rows` products or a cell over `MAX_FIELD_CHARS` stops it at once."""
    stream = io.BytesIO(body) if isinstance(body, bytes) else body
    reader = csv.reader(_lines(stream), strict=True)
    items: list[dict[str, Any]] = []
    lines: list[int] = []
    names: list[str] | None = None
    while True:
        line = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            raise _error(line, f"the CSV cannot be read here: {error}") from None
        if not any(cell.strip() for cell in row):
            continue
        if names is None:
            names = _header(row)
            continue
        if len(row) > len(names) and any(cell.strip() for cell in row[len(names) :]):
            raise _error(
                line,
                f"the row has {len(row)} fields but the header has {len(names)}; "
                "quote fields that contain commas",
            )
        if max_rows is not None and len(items) >= max_rows:
            raise _error(
                line,
                f"a batch holds at most {max_rows} products; split the CSV into several batches",
                code="too_many_items",
            )
        for name, cell in zip(names, row, strict=False):
            if len(cell) > MAX_FIELD_CHARS:
                raise _error(
                    line,
                    f"the value is longer than {MAX_FIELD_CHARS} characters; shorten it",
                    column=name,
                    code="value_too_large",
                )
        items.append(_item(names, row))
        lines.append(line)
    if names is None:
        raise _error(
            None,
            f"the CSV is empty; send a header line ({','.join(COLUMNS)}) and one row per product",
        )
    if not items:
        raise _error(None, "the CSV has a header but no product rows")
    batch: dict[str, Any] = {"items": items}
    options = {}
    for field in QUERY_FIELDS:
        value = query(field)
        if value is None or value == "":
            continue
        if field in OPTION_COLUMNS:
            options[field] = value
        else:
            batch[field] = value
    if options:
        batch["options"] = options
    return CsvBatch(body=batch, lines=lines)
