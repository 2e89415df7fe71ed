"""Keyset paging, one rule for every listing: order by (created_at, id) and start after a key."""

import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

Row = TypeVar("Row", bound=Any)
Key = tuple[datetime, uuid.UUID]


def keyset_page(
    query: Select[Row],
    created_at: InstrumentedAttribute[datetime],
    row_id: InstrumentedAttribute[uuid.UUID],
    *,
    after: Key | None,
    newest_first: bool,
    limit: int,
) -> Select[Row]:
    """The rows after the key `after` in (created_at, id) order, newest or oldest first."""
    if after is not None:
        key, start = tuple_(created_at, row_id), tuple_(*after)
        query = query.where(key < start if newest_first else key > start)
    if newest_first:
        return query.order_by(created_at.desc(), row_id.desc()).limit(limit)
    return query.order_by(created_at, row_id).limit(limit)
