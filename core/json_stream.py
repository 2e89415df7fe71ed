"""A JSON batch read as a stream: items counted and field sizes checked while parsing.

A body of five million empty items must cost what its first `max_batch_items` cost, so the
parser (ijson) hands over one event at a time and each item is validated as soon as it ends;
the first item past the limit, a string past `MAX_FIELD_CHARS`, a value nested deeper than
`MAX_DEPTH` or holding more than `MAX_VALUES` values stops the reading with a 422.
"""

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import IO, Any

import ijson
from pydantic import TypeAdapter, ValidationError

from core.batch_input import BATCH_ADAPTER, BatchIn, ItemIn
from core.errors import MAX_DETAILS, InputError, invalid, loc_path
from core.settings import Settings

MAX_FIELD_CHARS = 20_000
"""The longest string any field takes (a prompt, a message)."""
MAX_KEY_CHARS = 100
MAX_DEPTH = 4
"""How deep a value may nest under the body (an item's `options` is 2)."""
MAX_VALUES = 200
"""How many values one item or one top-level field may hold in all (an item's lists are short)."""

ITEM_ADAPTER: TypeAdapter[ItemIn] = TypeAdapter(ItemIn)

Event = tuple[str, Any]
Loc = tuple[str | int, ...]


class _Budget:
    def __init__(self, loc: Loc) -> None:
        self.loc = loc
        self.left = MAX_VALUES

    def spend(self, loc: Loc) -> None:
        self.left -= 1
        if self.left < 0:
            raise _too_much(
                self.loc, f"holds more than {MAX_VALUES} values; no field needs that many"
            )


def _too_much(loc: Loc, message: str) -> InputError:
    return invalid([{"loc": loc_path(loc), "message": message}], code="value_too_large")


def _build(event: str, value: Any, events: Iterator[Event], loc: Loc, budget: _Budget) -> Any:
    """One JSON value from its first event, within the depth, size and count limits."""
    budget.spend(loc)
    if event == "string" and len(value) > MAX_FIELD_CHARS:
        raise _too_much(loc, f"is longer than {MAX_FIELD_CHARS} characters; shorten it")
    if event == "number" and isinstance(value, Decimal):
        return float(value)
    if event not in ("start_map", "start_array"):
        return value
    if len(loc) > MAX_DEPTH:
        raise _too_much(loc, f"nests deeper than {MAX_DEPTH} levels; no field does")
    if event == "start_array":
        values: list[Any] = []
        for event, value in events:
            if event == "end_array":
                return values
            values.append(_build(event, value, events, (*loc, len(values)), budget))
    else:
        mapping: dict[str, Any] = {}
        for event, value in events:
            if event == "end_map":
                return mapping
            key = str(value)
            if len(key) > MAX_KEY_CHARS:
                raise _too_much(loc, f"has a key longer than {MAX_KEY_CHARS} characters")
            mapping[key] = _build(*next(events), events, (*loc, key), budget)
    raise ijson.IncompleteJSONError("the body ends inside a value")


def _details(error: ValidationError, prefix: Loc) -> list[dict[str, str]]:
    details = []
    for problem in error.errors(include_url=False, include_input=False):
        message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
        message = message[:1].lower() + message[1:]
        details.append({"loc": loc_path((*prefix, *problem["loc"])), "message": message})
    return details


class _Items:
    """The `items` array, validated item by item; at most `limit` of them."""

    def __init__(self, limit: int, context: dict[str, Any]) -> None:
        self.limit = limit
        self.context = context
        self.valid: list[ItemIn] = []
        self.problems: list[dict[str, str]] = []
        self.count = 0

    def read(self, events: Iterator[Event]) -> None:
        for event, value in events:
            if event == "end_array":
                return
            if self.count >= self.limit:
                raise invalid(
                    [
                        {
                            "loc": "items",
                            "message": f"a batch holds at most {self.limit} items; "
                            "split the products into several batches",
                        }
                    ],
                    code="too_many_items",
                )
            loc: Loc = ("items", self.count)
            raw = _build(event, value, events, loc, _Budget(loc))
            self.count += 1
            try:
                # Validated as JSON, so that messages and coercions are those of a JSON body.
                item = ITEM_ADAPTER.validate_json(json.dumps(raw), context=self.context)
                self.valid.append(item)
            except ValidationError as error:
                if len(self.problems) < MAX_DETAILS:
                    self.problems.extend(_details(error, loc))
        raise ijson.IncompleteJSONError("the body ends inside the items")


def _fields(events: Iterator[Event], items: _Items) -> dict[str, Any]:
    """The body's top-level fields; `items` is read by `items` as it streams."""
    first = next(events, None)
    if first is None:
        raise ijson.IncompleteJSONError("the body is empty")
    if first[0] != "start_map":
        raise InputError("the body must be a JSON object")
    fields: dict[str, Any] = {}
    for event, value in events:
        if event == "end_map":
            return fields
        key = str(value)
        if len(fields) > 20 or len(key) > MAX_KEY_CHARS:
            raise _too_much((), "has more or longer fields than a batch has")
        event, value = next(events)
        if key == "items" and event == "start_array":
            items.read(events)
            fields[key] = None
        else:
            fields[key] = _build(event, value, events, (key,), _Budget((key,)))
    raise ijson.IncompleteJSONError("the body ends inside the object")


def read_batch_json(stream: IO[bytes], settings: Settings) -> BatchIn:
    """Parse and validate a JSON batch: 400 when it is not JSON, 422 naming its problems."""
    context = {"allow_private_urls": settings.allow_private_urls}
    items = _Items(settings.max_batch_items, context)
    events: Iterator[Event] = ijson.basic_parse(stream)
    try:
        fields = _fields(events, items)
        for _ in events:
            pass
    except ijson.JSONError as error:
        raw = error.args[0] if error.args else ""
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        reason = text.strip().splitlines()[0] if text.strip() else "it ends too early"
        raise InputError(
            f"the body is not valid JSON: {reason}", code="malformed_json", status=400
        ) from None
    body = {**fields}
    if "items" in fields and fields["items"] is None:
        # The items were validated one by one; a stand-in checks the rest of the body.
        body["items"] = [{}] if items.count else []
    problems: list[dict[str, str]] = []
    try:
        spec = BATCH_ADAPTER.validate_json(json.dumps(body), context=context)
    except ValidationError as error:
        problems = _details(error, ())
    problems.extend(items.problems)
    if problems:
        raise invalid(problems)
    return spec.model_copy(update={"items": items.valid}) if "items" in fields else spec
