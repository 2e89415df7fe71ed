"""Schedule input (create and partial update) and the schedule answers."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from core.batch_input import ItemIn, Options, Priority, PromptTemplate, PublicUrl
from core.models import Schedule
from core.prompts import DEFAULT_TEMPLATE
from core.schedules import ALIASES, check_cron, check_timezone, local_time


def _cron(value: str) -> str:
    return check_cron(value)


def _timezone(value: str) -> str:
    check_timezone(value)
    return value


CRON_PATTERN = (
    rf"^\s*(@({'|'.join(sorted(alias[1:] for alias in ALIASES))})|"
    r"[-0-9A-Za-z*,/?#]+(\s+[-0-9A-Za-z*,/?#]+){4})\s*$"
)
"""The shape `check_cron` accepts: an alias, or five fields of digits, names, `*,/-?#`."""
Cron = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        examples=["0 2 * * *", "@daily"],
        json_schema_extra={"pattern": CRON_PATTERN},
    ),
    AfterValidator(_cron),
]
TimeZone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        examples=["Europe/Paris", "UTC"],
        json_schema_extra={"pattern": r"^\s*[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*\s*$"},
    ),
    AfterValidator(_timezone),
]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Items = Annotated[list[ItemIn], Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ScheduleIn(_Strict):
    """A cron schedule whose source is a CSV or JSON feed URL, or stored items (one of them)."""

    name: Name
    cron: Cron = Field(description="Five fields (minute hour day month weekday) or @daily etc.")
    timezone: TimeZone = Field(default="UTC", description="IANA zone the cron times are in.")
    source_url: PublicUrl | None = Field(
        default=None, description="A CSV or JSON product feed, fetched at each run."
    )
    items: Items | None = None
    prompt_template: PromptTemplate = DEFAULT_TEMPLATE
    options: Options = Options()
    webhook_url: PublicUrl | None = None
    priority: Priority = 5
    force: bool = Field(default=False, description="Make every product each run, changed or not.")
    enabled: bool = True


NOT_NULL = frozenset(
    {"name", "cron", "timezone", "prompt_template", "options", "priority", "force", "enabled"}
)
"""Fields of a change that may be left out but not sent as null."""


def _not_nullable(schema: dict[str, Any]) -> None:
    for name in NOT_NULL:
        field = schema["properties"][name]
        (kept,) = [case for case in field.pop("anyOf") if case.get("type") != "null"]
        field.update(kept)
        field.pop("default")


class ScheduleUpdate(_Strict):
    """Only the fields sent change; `null` clears source_url, items or webhook_url."""

    model_config = ConfigDict(json_schema_extra=_not_nullable)

    name: Name | None = None
    cron: Cron | None = None
    timezone: TimeZone | None = None
    source_url: PublicUrl | None = None
    items: Items | None = None
    prompt_template: PromptTemplate | None = None
    options: Options | None = None
    webhook_url: PublicUrl | None = None
    priority: Priority | None = None
    force: bool | None = None
    enabled: bool | None = None


SCHEDULE_ADAPTER: TypeAdapter[ScheduleIn] = TypeAdapter(ScheduleIn)
UPDATE_ADAPTER: TypeAdapter[ScheduleUpdate] = TypeAdapter(ScheduleUpdate)


class ScheduleOut(BaseModel):
    id: uuid.UUID
    name: str
    cron: str
    timezone: str
    source_url: str | None
    item_count: int | None = Field(description="How many stored items (none for a feed).")
    prompt_template: str | None
    options: dict[str, Any]
    webhook_url: str | None
    priority: int
    force: bool
    enabled: bool
    next_run_at: datetime | None = Field(description="UTC; null while paused.")
    next_run_local: datetime | None = Field(description="The same instant in the schedule's zone.")
    last_run_at: datetime | None
    last_batch_id: uuid.UUID | None
    last_error: str | None = Field(description="Why the last run failed or skipped products.")
    last_outcome: str | None = Field(description="What the last run did.")
    created_at: datetime


class ScheduleDetail(ScheduleOut):
    items: list[dict[str, Any]] | None


class SchedulePage(BaseModel):
    items: list[ScheduleOut]
    next_cursor: str | None


def _fields(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": schedule.id,
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "source_url": schedule.source_url,
        "item_count": len(schedule.items) if schedule.items is not None else None,
        "prompt_template": schedule.prompt_template,
        "options": schedule.options,
        "webhook_url": schedule.webhook_url,
        "priority": schedule.priority,
        "force": schedule.force,
        "enabled": schedule.enabled,
        "next_run_at": schedule.next_run_at,
        "next_run_local": (
            local_time(schedule.next_run_at, schedule.timezone) if schedule.next_run_at else None
        ),
        "last_run_at": schedule.last_run_at,
        "last_batch_id": schedule.last_batch_id,
        "last_error": schedule.last_error,
        "last_outcome": schedule.last_outcome,
        "created_at": schedule.created_at,
    }


def schedule_out(schedule: Schedule) -> ScheduleOut:
    return ScheduleOut(**_fields(schedule))


def schedule_detail(schedule: Schedule) -> ScheduleDetail:
    return ScheduleDetail(**_fields(schedule), items=schedule.items)
