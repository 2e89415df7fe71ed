"""Cron times are wall-clock times in the schedule's zone, and DST changes run each one once."""

from datetime import UTC, datetime

import pytest

from core.schedules import ScheduleError, check_cron, check_timezone, local_time, next_run

NEW_YORK = "America/New_York"


def runs(expression: str, zone: str, after: datetime, count: int) -> list[datetime]:
    found = []
    for _ in range(count):
        after = next_run(expression, zone, after)
        found.append(after)
    return found


def test_a_daily_time_stays_at_its_local_hour_across_a_dst_change() -> None:
    after = datetime(2026, 3, 27, 12, tzinfo=UTC)  # Paris moves to summer time on the 29th
    local = [local_time(run, "Europe/Paris") for run in runs("0 9 * * *", "Europe/Paris", after, 4)]
    assert [(t.day, t.hour) for t in local] == [(28, 9), (29, 9), (30, 9), (31, 9)]
    assert [t.utcoffset().total_seconds() / 3600 for t in local] == [1, 2, 2, 2]  # type: ignore[union-attr]


def test_a_time_the_clocks_skip_runs_once_shifted_by_the_change() -> None:
    after = datetime(2026, 3, 7, 12, tzinfo=UTC)  # New York skips 02:00-03:00 on March 8
    local = [local_time(run, NEW_YORK) for run in runs("30 2 * * *", NEW_YORK, after, 2)]
    assert [(t.day, t.hour, t.minute) for t in local] == [(8, 3, 30), (9, 2, 30)]


def test_a_time_that_happens_twice_runs_once() -> None:
    after = datetime(2026, 10, 31, 12, tzinfo=UTC)  # New York repeats 01:00-02:00 on Nov 1
    found = runs("30 1 * * *", NEW_YORK, after, 2)
    assert [local_time(run, NEW_YORK).day for run in found] == [1, 2]
    assert found[0] == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)  # the first 01:30 (EDT)


def test_runs_always_move_forward_through_a_repeated_hour() -> None:
    after = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
    found = runs("*/20 * * * *", NEW_YORK, after, 8)
    assert found == sorted(set(found))


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("0 2 * *", "five fields"),
        ("0 0 2 * * *", "five fields"),
        ("61 2 * * *", "not a valid cron expression"),
        ("0 0 31 2 *", "never matches"),
        ("@fortnightly", "unknown alias"),
    ],
)
def test_a_bad_cron_expression_says_why(expression: str, words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        check_cron(expression)


def test_aliases_and_names_are_accepted() -> None:
    assert check_cron("@Daily") == "@daily"
    assert check_cron("0  9 * *  mon-fri") == "0 9 * * mon-fri"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", "Europe/"])
def test_an_unknown_time_zone_is_refused(zone: str) -> None:
    with pytest.raises(ScheduleError, match="unknown time zone"):
        check_timezone(zone)
