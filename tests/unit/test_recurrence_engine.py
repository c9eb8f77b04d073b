"""The recurrence engine: next occurrences on local wall time across DST, month ends and ends."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import DAILY, MONTHLY, WEEKLY, rrule, weekday
from dateutil.rrule import weekdays as dateutil_weekdays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.due import Due, localize, parse_due, parse_moment
from domain.errors import ValidationFailed
from domain.recurrence import (
    NextOccurrence,
    Recurrence,
    RecurrenceAnchor,
    _deadline,
    _take,
    next_occurrence,
    occurrences,
    parse_recurrence,
    preview,
    series_start,
    series_text,
)

SCHEDULE = RecurrenceAnchor.SCHEDULE
COMPLETION = RecurrenceAnchor.COMPLETION
LONG_AGO = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def _wall(text: str) -> dt.datetime | dt.date:
    return dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)


def _series(text: str, due: Due, anchor: RecurrenceAnchor, start: str | None) -> Recurrence:
    """The series of `text` starting at `start`: None starts it at `due`, "" stores no start."""
    rule, exdates = parse_recurrence(text, due)
    first = series_start(due) if start is None else (_wall(start) if start else None)
    return Recurrence(rule, anchor, "series-1", start=first, exdates=exdates)


def _shown(due: Due | None) -> str | None:
    if due is None:
        return None
    return due.local.isoformat()


def case(
    name: str,
    rule: str,
    zone_name: str,
    current: str,
    expected: str | None,
    *,
    start: str | None = None,
    number: int = 1,
    expected_number: int | None = None,
    anchor: RecurrenceAnchor = SCHEDULE,
    completed: str | None = None,
    now: str | None = None,
    stored: bool = True,
) -> Any:
    """One row: `current` and moments are local wall in the zone; `expected` is ISO with offset,
    a date for all-day, or None when the series ends; `stored=False` keeps no series start."""
    if not stored:
        start = ""
    if expected_number is None:
        expected_number = number if expected is None else number + 1
    row = (rule, zone_name, current, expected, start, number, expected_number, anchor)
    return pytest.param(*row, completed, now, id=name)


# A table reads best one row to a few lines; the formatter would spread each over ten.
# fmt: off
TABLE = [
    # Europe/Berlin: DST starts 2026-03-29 02:00 -> 03:00, ends 2026-10-25 03:00 -> 02:00
    case("berlin daily 09:00 into summer time", "FREQ=DAILY", "Europe/Berlin",
         "2026-03-28T09:00", "2026-03-29T09:00:00+02:00"),
    case("berlin daily 09:00 into winter time", "FREQ=DAILY", "Europe/Berlin",
         "2026-10-24T09:00", "2026-10-25T09:00:00+01:00"),
    case("berlin daily 02:30 lands after the gap", "FREQ=DAILY", "Europe/Berlin",
         "2026-03-28T02:30", "2026-03-29T03:30:00+02:00"),
    case("berlin daily 02:30 returns to 02:30 after the gap day", "FREQ=DAILY", "Europe/Berlin",
         "2026-03-29T03:30", "2026-03-30T02:30:00+02:00", start="2026-03-28T02:30", number=2),
    case("berlin daily 02:30 takes the first of the repeated hour", "FREQ=DAILY",
         "Europe/Berlin", "2026-10-24T02:30", "2026-10-25T02:30:00+02:00"),
    case("berlin weekly sunday across the switch", "FREQ=WEEKLY;BYDAY=SU", "Europe/Berlin",
         "2026-03-22T09:00", "2026-03-29T09:00:00+02:00"),
    # America/New_York: DST starts 2026-03-08 02:00 -> 03:00, ends 2026-11-01 02:00 -> 01:00
    case("new york daily 09:00 into daylight time", "FREQ=DAILY", "America/New_York",
         "2026-03-07T09:00", "2026-03-08T09:00:00-04:00"),
    case("new york daily 09:00 into standard time", "FREQ=DAILY", "America/New_York",
         "2026-10-31T09:00", "2026-11-01T09:00:00-05:00"),
    case("new york daily 02:30 lands after the gap", "FREQ=DAILY", "America/New_York",
         "2026-03-07T02:30", "2026-03-08T03:30:00-04:00"),
    case("new york daily 01:30 takes the first of the repeated hour", "FREQ=DAILY",
         "America/New_York", "2026-10-31T01:30", "2026-11-01T01:30:00-04:00"),
    case("new york hourly steps over the missing hour", "FREQ=HOURLY", "America/New_York",
         "2026-03-08T01:00", "2026-03-08T03:00:00-04:00"),
    case("new york hourly does not repeat the doubled hour", "FREQ=HOURLY",
         "America/New_York", "2026-11-01T01:30", "2026-11-01T02:30:00-05:00"),
    # Australia/Sydney: DST ends 2026-04-05 03:00 -> 02:00, starts 2026-10-04 02:00 -> 03:00
    case("sydney daily 09:00 into standard time", "FREQ=DAILY", "Australia/Sydney",
         "2026-04-04T09:00", "2026-04-05T09:00:00+10:00"),
    case("sydney daily 09:00 into daylight time", "FREQ=DAILY", "Australia/Sydney",
         "2026-10-03T09:00", "2026-10-04T09:00:00+11:00"),
    case("sydney daily 02:30 lands after the gap", "FREQ=DAILY", "Australia/Sydney",
         "2026-10-03T02:30", "2026-10-04T03:30:00+11:00"),
    case("sydney daily 02:30 takes the first of the repeated hour", "FREQ=DAILY",
         "Australia/Sydney", "2026-04-04T02:30", "2026-04-05T02:30:00+11:00"),
    case("kolkata keeps its half-hour offset", "FREQ=DAILY", "Asia/Kolkata",
         "2026-03-28T09:00", "2026-03-29T09:00:00+05:30"),
    # month ends: never drift to the 28th
    case("monthly on the 31st skips february", "FREQ=MONTHLY;BYMONTHDAY=31", "Europe/Berlin",
         "2026-01-31T09:00", "2026-03-31T09:00:00+02:00"),
    case("monthly on the 31st skips april", "FREQ=MONTHLY;BYMONTHDAY=31", "Europe/Berlin",
         "2026-03-31T09:00", "2026-05-31T09:00:00+02:00", start="2026-01-31T09:00", number=2),
    case("monthly from the 31st without bymonthday skips short months", "FREQ=MONTHLY",
         "Europe/Berlin", "2026-01-31", "2026-03-31"),
    case("monthly from the 31st stays on the 31st after a short month", "FREQ=MONTHLY",
         "Europe/Berlin", "2026-03-31", "2026-05-31", start="2026-01-31", number=2),
    case("last day of the month reaches the 28th", "FREQ=MONTHLY;BYMONTHDAY=-1",
         "Europe/Berlin", "2026-01-31", "2026-02-28"),
    case("last day of the month goes back to the 31st", "FREQ=MONTHLY;BYMONTHDAY=-1",
         "Europe/Berlin", "2026-02-28", "2026-03-31", start="2026-01-31", number=2),
    case("last day of february in a leap year", "FREQ=MONTHLY;BYMONTHDAY=-1", "UTC",
         "2028-01-31T18:00", "2028-02-29T18:00:00+00:00"),
    case("yearly on february 29 waits for the next leap year", "FREQ=YEARLY", "Europe/Berlin",
         "2024-02-29", "2028-02-29"),
    case("yearly bymonth 2 bymonthday 29", "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29",
         "America/New_York", "2024-02-29T08:00", "2028-02-29T08:00:00-05:00"),
    case("yearly on march 3 all day", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3", "Europe/Berlin",
         "2026-03-03", "2027-03-03"),
    # positions and ordinals
    case("last weekday of the month", "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1",
         "Europe/Berlin", "2026-01-30", "2026-02-27"),
    case("last weekday of the month after a saturday 28th",
         "FREQ=MONTHLY;BYDAY=MO,TU,WE,TH,FR;BYSETPOS=-1", "Europe/Berlin", "2026-02-27",
         "2026-03-31", start="2026-01-30", number=2),
    case("second tuesday", "FREQ=MONTHLY;BYDAY=2TU", "Europe/Berlin",
         "2026-01-13T10:00", "2026-02-10T10:00:00+01:00"),
    case("last friday", "FREQ=MONTHLY;BYDAY=-1FR", "America/New_York",
         "2026-01-30T17:00", "2026-02-27T17:00:00-05:00"),
    case("fourth thursday of november", "FREQ=YEARLY;BYMONTH=11;BYDAY=4TH", "America/New_York",
         "2026-11-26", "2027-11-25"),
    case("every other week monday to wednesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE",
         "Europe/Berlin", "2026-01-05T09:00", "2026-01-07T09:00:00+01:00"),
    case("every other week wednesday to monday two weeks on",
         "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE", "Europe/Berlin", "2026-01-07T09:00",
         "2026-01-19T09:00:00+01:00", start="2026-01-05T09:00", number=2),
    case("a start off the byday pattern is not an occurrence", "FREQ=WEEKLY;BYDAY=MO",
         "Europe/Berlin", "2026-01-07", "2026-01-12"),
    case("weekly monday and friday all day", "FREQ=WEEKLY;BYDAY=MO,FR", "Europe/Berlin",
         "2026-01-05", "2026-01-09"),
    case("quarterly on the 15th", "FREQ=MONTHLY;INTERVAL=3;BYMONTHDAY=15", "Europe/Berlin",
         "2026-01-15T09:00", "2026-04-15T09:00:00+02:00"),
    case("twice a day by hour", "FREQ=DAILY;BYHOUR=9,17", "Europe/Berlin",
         "2026-01-05T09:00", "2026-01-05T17:00:00+01:00"),
    case("every six hours", "FREQ=HOURLY;INTERVAL=6", "Europe/Berlin",
         "2026-01-05T09:00", "2026-01-05T15:00:00+01:00"),
    # COUNT, EXDATE, UNTIL
    case("an excluded date is passed over", "FREQ=DAILY;COUNT=3\nEXDATE:20260102T090000",
         "Europe/Berlin", "2026-01-01T09:00", "2026-01-03T09:00:00+01:00"),
    case("count counts the excluded date and ends the series",
         "FREQ=DAILY;COUNT=3\nEXDATE:20260102T090000", "Europe/Berlin", "2026-01-03T09:00",
         None, start="2026-01-01T09:00", number=2),
    case("an excluded date in utc", "RRULE:FREQ=DAILY\nEXDATE:20260102T080000Z",
         "Europe/Berlin", "2026-01-01T09:00", "2026-01-03T09:00:00+01:00"),
    case("an excluded all-day date", "FREQ=WEEKLY\nEXDATE:20260112", "Europe/Berlin",
         "2026-01-05", "2026-01-19"),
    case("count end closes the series", "FREQ=WEEKLY;COUNT=2", "Europe/Berlin",
         "2026-01-08", None, start="2026-01-01", number=2),
    case("count without a stored start counts by occurrence number", "FREQ=DAILY;COUNT=3",
         "Europe/Berlin", "2026-01-03T09:00", None, number=3, stored=False),
    case("count without a stored start goes on before its last number", "FREQ=DAILY;COUNT=3",
         "Europe/Berlin", "2026-01-02T09:00", "2026-01-03T09:00:00+01:00", number=2,
         stored=False),
    case("until in utc includes the slot at that moment", "FREQ=DAILY;UNTIL=20260103T080000Z",
         "Europe/Berlin", "2026-01-02T09:00", "2026-01-03T09:00:00+01:00",
         start="2026-01-01T09:00", number=2),
    case("until in utc ends the series after it", "FREQ=DAILY;UNTIL=20260103T080000Z",
         "Europe/Berlin", "2026-01-03T09:00", None, start="2026-01-01T09:00", number=3),
    case("until in utc is read in the zone, a day ahead of utc",
         "FREQ=DAILY;UNTIL=20260105T000000Z", "Australia/Sydney", "2026-01-04T09:00",
         "2026-01-05T09:00:00+11:00"),
    case("until as a date includes that day", "FREQ=WEEKLY;UNTIL=20260115", "Europe/Berlin",
         "2026-01-08", "2026-01-15", start="2026-01-01", number=2),
    case("until as a date ends after that day", "FREQ=WEEKLY;UNTIL=20260115", "Europe/Berlin",
         "2026-01-15", None, start="2026-01-01", number=3),
    # schedule anchor: slots already past are skipped so the new task is not born overdue
    case("missed days are skipped", "FREQ=DAILY", "Europe/Berlin", "2026-01-05T09:00",
         "2026-01-09T09:00:00+01:00", now="2026-01-08T12:00", expected_number=5),
    case("a slot due exactly now is not skipped", "FREQ=DAILY", "Europe/Berlin",
         "2026-01-05T09:00", "2026-01-08T09:00:00+01:00", now="2026-01-08T09:00",
         expected_number=4),
    case("an all-day slot due today is not skipped", "FREQ=DAILY", "Europe/Berlin",
         "2026-01-05", "2026-01-08", now="2026-01-08T23:30", expected_number=4),
    case("count ends a series whose remaining slots are all past", "FREQ=DAILY;COUNT=3",
         "Europe/Berlin", "2026-01-01", None, now="2026-01-10T12:00", expected_number=3),
    # completion anchor (Todoist's every!)
    case("every three days from completion", "FREQ=DAILY;INTERVAL=3", "Europe/Berlin",
         "2026-01-05T09:00", "2026-01-08T09:00:00+01:00", anchor=COMPLETION,
         completed="2026-01-05T15:00"),
    case("completed early the next slot is still after the due", "FREQ=DAILY;INTERVAL=3",
         "Europe/Berlin", "2026-01-05T09:00", "2026-01-07T09:00:00+01:00", anchor=COMPLETION,
         completed="2026-01-04T10:00"),
    case("every week from a wednesday completion", "FREQ=WEEKLY", "Europe/Berlin",
         "2026-01-05T09:00", "2026-01-14T09:00:00+01:00", anchor=COMPLETION,
         completed="2026-01-07T18:00"),
    case("every month from completion all day", "FREQ=MONTHLY", "Europe/Berlin",
         "2026-01-31", "2026-03-03", anchor=COMPLETION, completed="2026-02-03T10:00"),
    case("every day from a late all-day completion", "FREQ=DAILY", "Europe/Berlin",
         "2026-01-05", "2026-01-10", anchor=COMPLETION, completed="2026-01-09T22:00"),
    case("completion keeps the wall time across dst", "FREQ=DAILY", "Europe/Berlin",
         "2026-03-28T09:00", "2026-03-29T09:00:00+02:00", anchor=COMPLETION,
         completed="2026-03-28T20:00"),
    case("every four hours from completion", "FREQ=HOURLY;INTERVAL=4", "Europe/Berlin",
         "2026-01-05T09:00", "2026-01-05T19:00:00+01:00", anchor=COMPLETION,
         completed="2026-01-05T15:00"),
    case("completion of a weekday rule lands on the next matching day",
         "FREQ=WEEKLY;BYDAY=MO,WE", "Europe/Berlin", "2026-01-05T09:00",
         "2026-01-07T09:00:00+01:00", anchor=COMPLETION, completed="2026-01-06T11:00"),
    case("completion count ends the series at its last number", "FREQ=DAILY;COUNT=3",
         "Europe/Berlin", "2026-01-03T09:00", None, number=3, anchor=COMPLETION,
         completed="2026-01-03T10:00"),
    case("completion before the count is spent goes on", "FREQ=DAILY;COUNT=3",
         "Europe/Berlin", "2026-01-02T09:00", "2026-01-05T09:00:00+01:00", number=2,
         anchor=COMPLETION, completed="2026-01-04T10:00"),
    case("completion until ends the series when the next slot is past it",
         "FREQ=DAILY;UNTIL=20260105T080000Z", "Europe/Berlin", "2026-01-02T09:00", None,
         number=2, anchor=COMPLETION, completed="2026-01-05T10:00"),
    case("completion falls back on the series when the completion day never matches",
         "FREQ=DAILY;INTERVAL=7;BYDAY=MO", "Europe/Berlin", "2026-01-05T09:00",
         "2026-01-12T09:00:00+01:00", anchor=COMPLETION, completed="2026-01-06T10:00"),
]
NEAR_SWITCHES = [
    dt.date(2026, 3, 7), dt.date(2026, 3, 27), dt.date(2026, 3, 29), dt.date(2026, 4, 4),
    dt.date(2026, 10, 3), dt.date(2026, 10, 24), dt.date(2026, 10, 31), dt.date(2027, 1, 31),
]
# fmt: on


@pytest.mark.parametrize(
    (
        "rule",
        "zone_name",
        "current",
        "expected",
        "start",
        "number",
        "expected_number",
        "anchor",
        "completed",
        "now",
    ),
    TABLE,
)
def test_the_next_occurrence_matches_the_table(
    rule: str,
    zone_name: str,
    current: str,
    expected: str | None,
    start: str | None,
    number: int,
    expected_number: int,
    anchor: RecurrenceAnchor,
    completed: str | None,
    now: str | None,
) -> None:
    due = parse_due(current, zone_name, "UTC")
    tz = ZoneInfo(zone_name)
    done = parse_moment(completed, tz, "completed") if completed else due.instant
    moment = parse_moment(now, tz, "now") if now else min(due.instant, done)

    following = next_occurrence(_series(rule, due, anchor, start), due, number, done, moment)

    assert _shown(following.due) == expected
    assert following.ended is (expected is None)
    assert following.number == expected_number


def test_the_table_holds_at_least_forty_rules() -> None:
    assert len(TABLE) >= 40


def test_skipped_slots_are_listed_in_order() -> None:
    due = parse_due("2026-01-05T09:00", "Europe/Berlin", "UTC")
    now = parse_moment("2026-01-08T12:00", due.tz, "now")

    following = next_occurrence(_series("FREQ=DAILY", due, SCHEDULE, None), due, 1, now, now)

    assert [_shown(s) for s in following.skipped] == [
        "2026-01-06T09:00:00+01:00",
        "2026-01-07T09:00:00+01:00",
        "2026-01-08T09:00:00+01:00",
    ]


def test_the_completion_anchor_never_skips() -> None:
    due = parse_due("2026-01-05T09:00", "Europe/Berlin", "UTC")
    done = parse_moment("2026-01-05T10:00", due.tz, "done")
    now = parse_moment("2026-01-20T10:00", due.tz, "now")

    following = next_occurrence(_series("FREQ=DAILY", due, COMPLETION, None), due, 1, done, now)

    assert following == NextOccurrence(
        parse_due("2026-01-06T09:00", "Europe/Berlin", "UTC"), (), 2, False
    )


def test_occurrences_start_at_the_series_start_and_follow_after() -> None:
    due = parse_due("2026-01-31T09:00", "Europe/Berlin", "UTC")
    series = _series("FREQ=MONTHLY;BYMONTHDAY=31", due, SCHEDULE, None)
    after = parse_due("2026-03-31T09:00", "Europe/Berlin", "UTC")

    assert [_shown(d) for d in occurrences(series, due, None, 2)] == [
        "2026-01-31T09:00:00+01:00",
        "2026-03-31T09:00:00+02:00",
    ]
    assert [_shown(d) for d in occurrences(series, due, after, 2)] == [
        "2026-05-31T09:00:00+02:00",
        "2026-07-31T09:00:00+02:00",
    ]
    assert occurrences(series, due, None, 0) == []


def test_occurrences_stop_where_the_series_ends() -> None:
    due = parse_due("2026-01-01", "Europe/Berlin", "UTC")

    found = occurrences(_series("FREQ=DAILY;COUNT=3", due, SCHEDULE, None), due, None, 10)

    assert [d.date for d in found] == [
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 2),
        dt.date(2026, 1, 3),
    ]


def test_a_date_exdate_removes_every_occurrence_of_that_day_in_a_timed_series() -> None:
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")

    found = preview("FREQ=DAILY;BYHOUR=9,17\nEXDATE;VALUE=DATE:20260101", due, 2)

    assert [_shown(d) for d in found] == ["2026-01-02T09:00:00+01:00", "2026-01-02T17:00:00+01:00"]


def test_preview_includes_the_due_when_it_matches_the_rule() -> None:
    due = parse_due("2026-03-28T09:00", "Europe/Berlin", "UTC")

    assert [_shown(d) for d in preview("FREQ=DAILY", due, 3)] == [
        "2026-03-28T09:00:00+01:00",
        "2026-03-29T09:00:00+02:00",
        "2026-03-30T09:00:00+02:00",
    ]


def test_preview_leaves_out_a_due_that_does_not_match_the_rule() -> None:
    due = parse_due("2026-01-07", "Europe/Berlin", "UTC")

    assert [d.date for d in preview("FREQ=WEEKLY;BYDAY=MO,FR", due, 2)] == [
        dt.date(2026, 1, 9),
        dt.date(2026, 1, 12),
    ]


def test_all_day_occurrences_stay_all_day() -> None:
    due = parse_due("2026-03-28", "America/New_York", "UTC")

    found = preview("FREQ=DAILY", due, 3)

    assert all(d.all_day and d.timezone == "America/New_York" for d in found)


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=DAILY",
        "FREQ=WEEKLY;BYDAY=MO,WE\nEXDATE:20260112T090000",
        "RRULE:freq=monthly;bymonthday=-1\r\nEXDATE:20260331T090000,20260130T080000Z",
        "RRULE:FREQ=DAILY EXDATE:20260110T090000 EXDATE:20260105T090000",
        "FREQ=DAILY\nEXDATE;TZID=America/New_York:20260105T030000",
    ],
)
def test_series_text_round_trips_through_parse_recurrence(text: str) -> None:
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")
    rule, exdates = parse_recurrence(text, due)
    series = Recurrence(rule, SCHEDULE, "s", start=series_start(due), exdates=exdates)

    assert parse_recurrence(series_text(series), due) == (rule, exdates)
    assert series_text(series).startswith("FREQ=")


def test_parse_recurrence_reads_exdates_as_local_wall_time_sorted_once() -> None:
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")

    rule, exdates = parse_recurrence(
        "RRULE:FREQ=DAILY\nEXDATE:20260105T090000,20260103T080000Z,20260105T090000", due
    )

    assert rule == "FREQ=DAILY"
    assert exdates == (dt.datetime(2026, 1, 3, 9, 0), dt.datetime(2026, 1, 5, 9, 0))


def test_an_all_day_series_reads_its_exdates_as_dates() -> None:
    due = parse_due("2026-01-01", "Europe/Berlin", "UTC")

    assert parse_recurrence("FREQ=DAILY\nEXDATE:20260103,20260104T120000", due) == (
        "FREQ=DAILY",
        (dt.date(2026, 1, 3), dt.date(2026, 1, 4)),
    )


def test_series_text_of_a_series_without_exdates_is_the_rule() -> None:
    assert series_text(Recurrence("FREQ=DAILY", SCHEDULE, "s")) == "FREQ=DAILY"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("FREQ=MINUTELY", "MINUTELY"),
        ("FREQ=SECONDLY", "SECONDLY"),
        ("", "empty"),
        ("EXDATE:20260105", "no RRULE"),
        ("RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY", "more than one"),
        ("DTSTART:20260101T090000\nRRULE:FREQ=DAILY", "DTSTART"),
        ("RRULE:FREQ=DAILY\nRDATE:20260105", "RDATE"),
        ("FREQ=DAILY\nEXDATE:tomorrow", "EXDATE"),
        ("FREQ=DAILY\nEXDATE;TZID=Mars/Olympus:20260105T090000", "IANA"),
        ("FREQ=DAILY;COUNT=1\nEXDATE:20260101T090000", "no occurrence"),
        ("FREQ=DAILY;UNTIL=20251231T000000Z", "no occurrence"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "BYMONTH"),
        ("X-COLOR:red", "not an RRULE"),
    ],
)
def test_parse_recurrence_refuses_with_a_fix(text: str, words: str) -> None:
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")

    with pytest.raises(ValidationFailed) as caught:
        parse_recurrence(text, due)

    assert caught.value.field == "recurrence"
    assert "Fix:" in caught.value.message
    assert words in caught.value.message


@pytest.mark.parametrize("rule", ["FREQ=HOURLY", "FREQ=DAILY;BYHOUR=9,17"])
def test_an_all_day_series_refuses_repeats_within_a_day(rule: str) -> None:
    due = parse_due("2026-01-01", "Europe/Berlin", "UTC")

    with pytest.raises(ValidationFailed) as caught:
        parse_recurrence(rule, due)

    assert "all-day" in caught.value.problem


def test_a_series_that_never_matches_from_its_start_answers_nothing() -> None:
    due = parse_due("2026-01-06T09:00", "Europe/Berlin", "UTC")
    # every seventh day from a Tuesday is never a Monday; dateutil walks on to year 9999, so the
    # search is bounded (tests/bench/bench_recurrence.py times it)
    series = Recurrence("FREQ=DAILY;INTERVAL=7;BYDAY=MO", SCHEDULE, "s", start=series_start(due))

    found = occurrences(series, due, None, 1)

    assert found == []


def test_a_search_that_runs_out_of_time_answers_what_it_found(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("domain.recurrence._SEARCH_SECONDS", 0.05)
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")
    far = parse_due("2100-01-01T09:00", "Europe/Berlin", "UTC")
    series = _series("FREQ=HOURLY", due, SCHEDULE, None)

    found = occurrences(series, due, far, 1)

    # an hourly series has occurrences after 2100: none found means the search stopped early
    assert found == []


def test_a_search_that_runs_out_of_time_stops_walking_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("domain.recurrence._SEARCH_SECONDS", 0.05)

    def step() -> None:
        pass

    def never_yields() -> Iterator[int]:
        # as dateutil does on a rule that never matches, but without the year 9999 to end at
        while True:
            step()
        yield 0

    assert _take(never_yields(), _deadline(), limit=1) == []

    for search in [t for t in threading.enumerate() if t.name == "rrule-search"]:
        search.join()  # returns only because the walk was stopped (else the test times out)


def test_a_walk_that_waits_for_a_core_is_not_out_of_time_until_it_has_done_its_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The budget is the walk's own CPU time: on a busy machine a good rule whose walk waits
    longer than the budget for a core is still expanded (it was refused as yielding nothing)."""
    monkeypatch.setattr("domain.recurrence._SEARCH_SECONDS", 0.1)

    def starved() -> Iterator[str]:
        for _ in range(30):
            time.sleep(0.02)  # waiting, as a thread does for a busy core: no work done
            yield "waited"
        yield "found"

    found = _take(starved(), _deadline(), enough=lambda item: item == "found")

    assert found[-1] == "found"


# --- properties ------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York", "Australia/Sydney", "UTC", "Asia/Kolkata"]
FREQS = {"DAILY": DAILY, "WEEKLY": WEEKLY, "MONTHLY": MONTHLY}
DAY_NAMES = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


@st.composite
def series_cases(draw: st.DrawFn) -> tuple[str, str, dt.datetime, list[dt.datetime]]:
    freq = draw(st.sampled_from(sorted(FREQS)))
    interval = draw(st.integers(1, 3))
    days = draw(st.sets(st.integers(0, 6), max_size=3))
    zone_name = draw(st.sampled_from(ZONES))
    day = draw(
        st.one_of(
            st.sampled_from(NEAR_SWITCHES), st.dates(dt.date(2025, 1, 1), dt.date(2028, 12, 31))
        )
    )
    clock = dt.time(
        draw(st.sampled_from([0, 1, 2, 3, 9, 17, 23])), draw(st.sampled_from([0, 30, 59]))
    )
    rule = f"FREQ={freq};INTERVAL={interval}"
    if days:
        rule += ";BYDAY=" + ",".join(DAY_NAMES[d] for d in sorted(days))
    start = dt.datetime.combine(day, clock)
    byweekday: list[weekday] | None = [dateutil_weekdays[d] for d in sorted(days)] or None
    own = rrule(FREQS[freq], interval=interval, byweekday=byweekday, dtstart=start, count=8)
    return rule, zone_name, start, list(own)


def _exists(wall: dt.datetime, tz: ZoneInfo) -> bool:
    return wall.replace(tzinfo=tz).astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) == wall


def _expected_local(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The wall time itself, or one hour on when it falls in a gap (all these zones jump 1 h)."""
    return wall if _exists(wall, tz) else wall + dt.timedelta(hours=1)


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY
@given(series_cases())
def test_each_next_occurrence_is_later_is_the_rules_own_and_keeps_the_wall_time(
    drawn: tuple[str, str, dt.datetime, list[dt.datetime]],
) -> None:
    rule, zone_name, start, own = drawn
    tz = ZoneInfo(zone_name)
    due = Due(zone_name, at=localize(start, tz))
    series = Recurrence(rule, SCHEDULE, "s", start=start)

    current = occurrences(series, due, None, 1)[0]
    walk = [current]
    for number in range(1, len(own)):
        following = next_occurrence(series, current, number, current.instant, LONG_AGO)
        assert following.due is not None and following.number == number + 1
        assert following.due.instant > current.instant
        current = following.due
        walk.append(current)

    assert [d.instant for d in walk] == [localize(wall, tz) for wall in own]
    for occurrence, wall in zip(walk, own, strict=True):
        local = occurrence.local
        assert isinstance(local, dt.datetime)
        assert local.replace(tzinfo=None) == _expected_local(wall, tz)
        assert local.time().replace(tzinfo=None) in {start.time(), _expected_local(wall, tz).time()}
    assert occurrences(series, due, None, len(own)) == walk


@PROPERTY
@given(series_cases(), st.integers(0, 6 * 24), st.booleans())
def test_a_completion_anchored_next_is_later_than_both_due_and_completion(
    drawn: tuple[str, str, dt.datetime, list[dt.datetime]], hours_late: int, all_day: bool
) -> None:
    rule, zone_name, start, _ = drawn
    tz = ZoneInfo(zone_name)
    if all_day:
        due = Due(zone_name, date=start.date())
        series = Recurrence(rule, COMPLETION, "s", start=start.date())
    else:
        due = Due(zone_name, at=localize(start, tz))
        series = Recurrence(rule, COMPLETION, "s", start=start)
    done = due.instant + dt.timedelta(hours=hours_late)

    following = next_occurrence(series, due, 1, done, done)

    assert following.due is not None and following.number == 2 and following.skipped == ()
    if all_day:
        assert following.due.date is not None
        assert following.due.date > max(due.date or start.date(), done.astimezone(tz).date())
    else:
        assert following.due.instant > max(due.instant, done)
        local = following.due.local
        assert isinstance(local, dt.datetime)
        wall = dt.datetime.combine(local.date(), start.time())
        assert local.replace(tzinfo=None) == _expected_local(wall, tz)


@pytest.mark.parametrize("exdate", ["20260329T023000", "20260329T033000", "20260329T013000Z"])
def test_an_exdate_removes_a_slot_in_a_dst_gap_by_its_wall_or_shown_time(exdate: str) -> None:
    due = parse_due("2026-03-28T02:30", "Europe/Berlin", "UTC")

    found = preview(f"FREQ=DAILY\nEXDATE:{exdate}", due, 2)

    assert [_shown(d) for d in found] == ["2026-03-28T02:30:00+01:00", "2026-03-30T02:30:00+02:00"]


def test_an_exdate_at_the_edge_of_the_calendar_is_refused() -> None:
    due = parse_due("2026-01-01T09:00", "America/New_York", "UTC")

    with pytest.raises(ValidationFailed) as caught:
        parse_recurrence("FREQ=DAILY\nEXDATE:99991231T230000", due)

    assert "EXDATE" in caught.value.problem


def test_a_long_hourly_backlog_is_skipped_in_one_call() -> None:
    due = parse_due("2026-01-01T09:00", "Europe/Berlin", "UTC")
    now = parse_moment("2027-01-01T09:30", due.tz, "now")
    series = _series("FREQ=HOURLY", due, SCHEDULE, None)

    following = next_occurrence(series, due, 1, now, now)

    assert _shown(following.due) == "2027-01-01T10:00:00+01:00"
    assert following.number == 1 + 1 + len(following.skipped)
    # a year of hours, less the 02:00 of 2026-03-29 that the gap moves onto 03:00
    assert len(following.skipped) == 365 * 24 - 1
