"""Rules schedules share between the API and the worker: checking a cron expression and a time
zone, the next run time, and the identity of a product across runs.

Cron fields are read as wall-clock times in the schedule's zone, so `0 2 * * *` in Europe/Paris
is 02:00 Paris time all year. Across DST changes every matching wall time runs once: a time the
clocks skip (02:30 on a spring-forward night) runs once, shifted by the change (03:30); a time
that happens twice (01:30 on a fall-back night) runs at its first occurrence only.
"""

import hashlib
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter

from core.batch_input import BatchIn
from core.errors import invalid
from core.intake import Locate
from core.settings import get_settings

ALIASES = frozenset(
    {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
)
_HORIZON_STEPS = 1000


class ScheduleError(ValueError):
    """A cron expression or a time zone that cannot be used; the message says why."""


def check_timezone(name: str) -> ZoneInfo:
    """The zone for an IANA name like `Europe/Paris`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"unknown time zone {name!r}; use an IANA name such as UTC, Europe/Paris or "
            "America/New_York"
        ) from None


INTERVAL_SAMPLES = 300
"""Consecutive runs compared for the minimum interval (a day of `*/5 9 * * *` fits)."""


def check_cron(expression: str) -> str:
    """A five-field cron expression (minute hour day month weekday) or an alias like @daily."""
    text = " ".join(expression.split())
    if text.startswith("@"):
        if text.lower() not in ALIASES:
            raise ScheduleError(f"unknown alias {text!r}; use one of {', '.join(sorted(ALIASES))}")
        return text.lower()
    if len(text.split()) != 5:
        raise ScheduleError(
            f"a cron expression has five fields (minute hour day month weekday), "
            f"this one has {len(text.split())}: {text!r}"
        )
    try:
        croniter(text, datetime(2000, 1, 1))
    except (CroniterBadCronError, ValueError, KeyError) as error:
        raise ScheduleError(f"{text!r} is not a valid cron expression ({error})") from None
    try:
        next_run(text, "UTC", datetime(2000, 1, 1, tzinfo=UTC))
    except ScheduleError:
        raise ScheduleError(f"{text!r} never matches a date") from None
    _check_interval(text)
    return text


def _check_interval(text: str) -> None:
    """Runs at least `schedule_min_interval_s` apart: each run fetches a feed and its media."""
    least = get_settings().schedule_min_interval_s
    times = croniter(text, datetime(2000, 1, 1))
    previous = times.get_next(datetime)
    for _ in range(INTERVAL_SAMPLES):
        current = times.get_next(datetime)
        gap = (current - previous).total_seconds()
        if gap < least:
            raise ScheduleError(
                f"{text!r} runs {gap / 60:g} minutes apart; a schedule runs at most every "
                f"{least / 60:g} minutes (each run reads its feed and media again)"
            )
        previous = current


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a wall-clock time: the first one if it happens twice, the shifted one
    if the clocks skip it (PEP 495 `fold=0`)."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def next_run(expression: str, timezone: str, after: datetime) -> datetime:
    """The first run strictly after `after` (aware), in UTC."""
    zone = check_timezone(timezone)
    wall_after = after.astimezone(zone).replace(tzinfo=None)
    try:
        walls = croniter(expression, wall_after)
        for _ in range(_HORIZON_STEPS):
            candidate = _instant(walls.get_next(datetime), zone)
            if candidate > after:
                return candidate
    except CroniterBadDateError:
        pass
    raise ScheduleError(f"{expression!r} has no run time after {after:%Y-%m-%d %H:%M} UTC")


def local_time(instant: datetime, timezone: str) -> datetime:
    """An instant shown in the schedule's zone."""
    return instant.astimezone(ZoneInfo(timezone))


def identify_products(spec: BatchIn, locate: Locate) -> BatchIn:
    """Give every product an identity across runs (its ref, else its title, else its prompt's
    hash); two products with one identity are refused."""
    items = []
    seen: dict[str, int] = {}
    for index, item in enumerate(spec.items):
        ref = item.ref or item.title
        if not ref:
            ref = "prompt-" + hashlib.sha256((item.prompt or "").encode()).hexdigest()[:16]
        if ref in seen:
            message = (
                f"the product {ref!r} appears twice (first at {locate(('items', seen[ref]))}); "
                "give each product a distinct ref"
            )
            raise invalid([{"loc": locate(("items", index, "ref")), "message": message}])
        seen[ref] = index
        items.append(item if item.ref == ref else item.model_copy(update={"ref": ref}))
    return spec.model_copy(update={"items": items})
