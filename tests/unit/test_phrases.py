"""English phrases for recurrence and due: what each one resolves to, and what is refused."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from domain.due import Due
from domain.errors import ValidationFailed
from domain.phrases import due_from_phrase, looks_like_rrule, rrule_from_phrase

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
# A Thursday morning in Berlin.
NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=BERLIN)
# Thursday 22:30 in New York is already Friday 04:30 in Berlin.
NEAR_MIDNIGHT = dt.datetime(2026, 11, 27, 3, 30, tzinfo=UTC)


def _day(year: int, month: int, day: int, zone: str = "Europe/Berlin") -> Due:
    return Due(timezone=zone, date=dt.date(year, month, day))


def _at(
    year: int, month: int, day: int, hour: int, minute: int = 0, zone: str = "Europe/Berlin"
) -> Due:
    """A timed Due from its UTC moment."""
    return Due(timezone=zone, at=dt.datetime(year, month, day, hour, minute, tzinfo=UTC))


RULES = [
    ("every day", "FREQ=DAILY"),
    ("daily", "FREQ=DAILY"),
    ("every 3 days", "FREQ=DAILY;INTERVAL=3"),
    ("every other day", "FREQ=DAILY;INTERVAL=2"),
    ("every third day", "FREQ=DAILY;INTERVAL=3"),
    ("each day", "FREQ=DAILY"),
    ("every weekday", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR"),
    ("every weekend", "FREQ=WEEKLY;BYDAY=SA,SU"),
    ("every week", "FREQ=WEEKLY"),
    ("weekly", "FREQ=WEEKLY"),
    ("every other week", "FREQ=WEEKLY;INTERVAL=2"),
    ("every 2nd week", "FREQ=WEEKLY;INTERVAL=2"),
    ("fortnightly", "FREQ=WEEKLY;INTERVAL=2"),
    ("every two weeks", "FREQ=WEEKLY;INTERVAL=2"),
    ("every 2 weeks on monday and wednesday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE"),
    ("weekly on friday", "FREQ=WEEKLY;BYDAY=FR"),
    ("every week on tue, thu", "FREQ=WEEKLY;BYDAY=TU,TH"),
    ("every monday", "FREQ=WEEKLY;BYDAY=MO"),
    ("every mondays and thursdays", "FREQ=WEEKLY;BYDAY=MO,TH"),
    ("every mon, wed and fri", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("every fri, mon, and wed", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("every other monday", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO"),
    ("every month", "FREQ=MONTHLY"),
    ("monthly", "FREQ=MONTHLY"),
    ("every 3 months", "FREQ=MONTHLY;INTERVAL=3"),
    ("every month on the 15th", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("monthly on the 1st", "FREQ=MONTHLY;BYMONTHDAY=1"),
    ("the 15th of every month", "FREQ=MONTHLY;BYMONTHDAY=15"),
    ("every 28th of the month", "FREQ=MONTHLY;BYMONTHDAY=28"),
    ("every other month on the 10th", "FREQ=MONTHLY;INTERVAL=2;BYMONTHDAY=10"),
    ("last day of every month", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("every last day of the month", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("every month on the last day", "FREQ=MONTHLY;BYMONTHDAY=-1"),
    ("the first day of every month", "FREQ=MONTHLY;BYMONTHDAY=1"),
    ("every first monday of the month", "FREQ=MONTHLY;BYDAY=1MO"),
    ("the second tuesday of every month", "FREQ=MONTHLY;BYDAY=2TU"),
    ("every last friday of the month", "FREQ=MONTHLY;BYDAY=-1FR"),
    ("every month on the 3rd wednesday", "FREQ=MONTHLY;BYDAY=3WE"),
    ("every year", "FREQ=YEARLY"),
    ("yearly", "FREQ=YEARLY"),
    ("annually", "FREQ=YEARLY"),
    ("every year on march 3", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3"),
    ("every march 3rd", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3"),
    ("every 3rd of march", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3"),
    ("march 3 every year", "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3"),
    ("annually on 25 dec", "FREQ=YEARLY;BYMONTH=12;BYMONTHDAY=25"),
    ("every 2 years on sept 30", "FREQ=YEARLY;INTERVAL=2;BYMONTH=9;BYMONTHDAY=30"),
    ("every hour", "FREQ=HOURLY"),
    ("hourly", "FREQ=HOURLY"),
    ("every 2 hours", "FREQ=HOURLY;INTERVAL=2"),
    ("  Every   Mon,Wed & FRI. ", "FREQ=WEEKLY;BYDAY=MO,WE,FR"),
    ("EVERY 2 WEEKS ON MONDAY AND WEDNESDAY", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE"),
]


@pytest.mark.parametrize(("phrase", "rule"), RULES)
def test_a_recurrence_phrase_resolves_to_its_rrule(phrase: str, rule: str) -> None:
    assert rrule_from_phrase(phrase) == rule


@pytest.mark.parametrize(("phrase", "rule"), RULES)
def test_every_resolved_rule_is_read_by_dateutil_and_yields_occurrences(
    phrase: str, rule: str
) -> None:
    expansion = rrulestr(rule, dtstart=dt.datetime(2026, 11, 26, 9, 0))

    assert expansion[2] > expansion[1] > expansion[0]


@pytest.mark.parametrize(
    ("phrase", "first_three"),
    [
        ("every weekday", ["2026-11-26", "2026-11-27", "2026-11-30"]),
        # INTERVAL counts weeks from the start's own week (Mon 23 Nov), so the 30th is skipped.
        ("every 2 weeks on monday and wednesday", ["2026-12-07", "2026-12-09", "2026-12-21"]),
        ("last day of every month", ["2026-11-30", "2026-12-31", "2027-01-31"]),
        ("every first monday of the month", ["2026-12-07", "2027-01-04", "2027-02-01"]),
        ("every last friday of the month", ["2026-11-27", "2026-12-25", "2027-01-29"]),
        ("every year on march 3", ["2027-03-03", "2028-03-03", "2029-03-03"]),
    ],
)
def test_a_resolved_rule_means_what_the_phrase_says(phrase: str, first_three: list[str]) -> None:
    expansion = rrulestr(rrule_from_phrase(phrase), dtstart=dt.datetime(2026, 11, 26))

    assert [day.date().isoformat() for day in expansion[:3]] == first_three


@pytest.mark.parametrize(
    ("phrase", "problem"),
    [
        ("every second monday", "does not say whether it counts within the month"),
        ("every first monday", "does not say whether it counts within the month"),
        ("every last friday", "does not say whether it counts within the month"),
        ("every month on the 31st", "not every month has a day 31"),
        ("every 29th of the month", "not every month has a day 29"),
        ("every fifth monday of the month", "not every month has a fifth monday"),
        ("every year on feb 29", "February 29 exists only in leap years"),
        ("every april 31", "April has no day 31"),
        ("biweekly", "can mean twice per period or every second period"),
        ("bi-monthly", "can mean twice per period or every second period"),
        ("twice a week", "not on which days"),
        ("3 times a month", "not on which days"),
        ("every 30 minutes", "more often than hourly"),
        ("every 10 seconds", "more often than hourly"),
        ("every day until december", "an end"),
        ("every week for 3 months", "an end"),
        ("every monday, 10 times", "an end"),
        ("every day at 9am", "a time of day is not part of the recurrence"),
        ("every monday morning", "a time of day is not part of the recurrence"),
        ("every blue moon", "is not an RRULE or a phrase Dueflow reads"),
        ("every 0 days", "is not an RRULE or a phrase Dueflow reads"),
        ("every day on monday", "is not an RRULE or a phrase Dueflow reads"),
        ("every month on the 32nd", "is not an RRULE or a phrase Dueflow reads"),
        ("every second monday and wednesday", "is not an RRULE or a phrase Dueflow reads"),
        ("every other weekday", "is not an RRULE or a phrase Dueflow reads"),
        ("mondays", "is not an RRULE or a phrase Dueflow reads"),
        ("every", "is not an RRULE or a phrase Dueflow reads"),
        ("   ", "is empty"),
    ],
)
def test_a_recurrence_phrase_that_needs_a_guess_is_refused_with_the_rrule_form(
    phrase: str, problem: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        rrule_from_phrase(phrase)

    assert caught.value.field == "recurrence"
    assert problem in caught.value.problem
    assert "FREQ=" in caught.value.fix
    assert caught.value.message.startswith("recurrence: ")
    assert "Fix: " in caught.value.message


@pytest.mark.parametrize(
    ("phrase", "fix"),
    [
        ("every day at 9am", "FREQ=DAILY and put the time in due"),
        ("every monday at 17:00", "FREQ=WEEKLY;BYDAY=MO and put the time in due"),
        ("every other week on friday, 5 pm", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR and put the time"),
        ("every first monday of the month at noon", "FREQ=MONTHLY;BYDAY=1MO and put the time"),
    ],
)
def test_a_time_of_day_in_a_recurrence_is_refused_with_the_rule_it_would_leave(
    phrase: str, fix: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        rrule_from_phrase(phrase)

    assert fix in caught.value.fix


def test_an_ambiguous_ordinal_weekday_is_refused_with_both_readings() -> None:
    with pytest.raises(ValidationFailed) as caught:
        rrule_from_phrase("every second monday")

    assert "FREQ=MONTHLY;BYDAY=2MO" in caught.value.fix
    assert "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO" in caught.value.fix


@pytest.mark.parametrize(
    ("text", "is_rule"),
    [
        ("FREQ=WEEKLY;BYDAY=MO", True),
        ("freq=daily", True),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=-1", True),
        ("rrule:freq=daily", True),
        ("  BYDAY=FR ; FREQ=WEEKLY", True),
        ("INTERVAL=2;FREQ=WEEKLY", True),
        ("RRULE:FREQ=DAILY\nEXDATE:20261201T090000", True),
        ("EXDATE:20261201T090000\nRRULE:FREQ=DAILY", True),
        ("DTSTART:20261201T090000\nRRULE:FREQ=DAILY", True),
        ("RRULE:", True),
        ("every day", False),
        ("every 2 weeks on monday and wednesday", False),
        ("last day of every month", False),
        ("daily", False),
        ("", False),
    ],
)
def test_looks_like_rrule_tells_rfc_5545_text_from_a_phrase(text: str, is_rule: bool) -> None:
    assert looks_like_rrule(text) is is_rule


DUES = [
    ("today", _day(2026, 11, 26)),
    ("tomorrow", _day(2026, 11, 27)),
    ("day after tomorrow", _day(2026, 11, 28)),
    ("friday", _day(2026, 11, 27)),
    ("on friday", _day(2026, 11, 27)),
    ("fri", _day(2026, 11, 27)),
    ("next friday", _day(2026, 11, 27)),
    ("this friday", _day(2026, 11, 27)),
    ("monday", _day(2026, 11, 30)),
    ("this thursday", _day(2026, 11, 26)),
    ("next thursday", _day(2026, 12, 3)),
    ("in 3 days", _day(2026, 11, 29)),
    ("in a day", _day(2026, 11, 27)),
    ("in 2 weeks", _day(2026, 12, 10)),
    ("in a week", _day(2026, 12, 3)),
    ("in 2 months", _day(2027, 1, 26)),
    ("in one year", _day(2027, 11, 26)),
    ("tomorrow 5pm", _at(2026, 11, 27, 16)),
    ("tomorrow at 17:00", _at(2026, 11, 27, 16)),
    ("Tomorrow  AT 5 P.M.", _at(2026, 11, 27, 16)),
    ("tomorrow, 5:30pm", _at(2026, 11, 27, 16, 30)),
    ("5pm tomorrow", _at(2026, 11, 27, 16)),
    ("today at 9:30am", _at(2026, 11, 26, 8, 30)),
    ("today 09:30", _at(2026, 11, 26, 8, 30)),
    ("today 00:00", _at(2026, 11, 25, 23)),
    ("tomorrow 12pm", _at(2026, 11, 27, 11)),
    ("tomorrow 12:30", _at(2026, 11, 27, 11, 30)),
    ("tomorrow at noon", _at(2026, 11, 27, 11)),
    ("monday 9am", _at(2026, 11, 30, 8)),
    ("at 9am on monday", _at(2026, 11, 30, 8)),
    ("next friday at 21:15", _at(2026, 11, 27, 20, 15)),
    ("in 3 days at 8am", _at(2026, 11, 29, 7)),
    ("2026-12-01 17:00", _at(2026, 12, 1, 16)),
    ("5pm", _at(2026, 11, 26, 16)),
    ("at noon", _at(2026, 11, 26, 11)),
    ("in 2 hours", _at(2026, 11, 26, 11)),
    ("in an hour", _at(2026, 11, 26, 10)),
    ("in 30 minutes", _at(2026, 11, 26, 9, 30)),
    ("in 90 mins", _at(2026, 11, 26, 10, 30)),
]


@pytest.mark.parametrize(("phrase", "due"), DUES)
def test_a_due_phrase_resolves_in_the_users_zone(phrase: str, due: Due) -> None:
    assert due_from_phrase(phrase, NOW, "Europe/Berlin") == due


@pytest.mark.parametrize(
    ("zone", "phrase", "due"),
    [
        ("America/New_York", "today", _day(2026, 11, 26, "America/New_York")),
        ("America/New_York", "tomorrow", _day(2026, 11, 27, "America/New_York")),
        ("America/New_York", "friday", _day(2026, 11, 27, "America/New_York")),
        ("America/New_York", "tomorrow 9am", _at(2026, 11, 27, 14, zone="America/New_York")),
        ("America/New_York", "11pm", _at(2026, 11, 27, 4, zone="America/New_York")),
        ("Europe/Berlin", "today", _day(2026, 11, 27)),
        ("Europe/Berlin", "tomorrow", _day(2026, 11, 28)),
        ("Europe/Berlin", "tomorrow 9am", _at(2026, 11, 28, 8)),
    ],
)
def test_the_zone_not_utc_decides_which_day_today_is(zone: str, phrase: str, due: Due) -> None:
    assert due_from_phrase(phrase, NEAR_MIDNIGHT, zone) == due


def test_a_bare_weekday_that_is_today_in_one_zone_is_refused_there_but_not_elsewhere() -> None:
    with pytest.raises(ValidationFailed) as caught:
        due_from_phrase("friday", NEAR_MIDNIGHT, "Europe/Berlin")

    assert "today is a Friday" in caught.value.problem
    assert due_from_phrase("friday", NEAR_MIDNIGHT, "America/New_York").date == dt.date(
        2026, 11, 27
    )


@pytest.mark.parametrize(
    ("weekday_now", "phrase", "date"),
    [
        # Thursday 2026-11-26: bare, "this" and "next" all mean the coming Friday.
        (dt.date(2026, 11, 26), "friday", dt.date(2026, 11, 27)),
        (dt.date(2026, 11, 26), "this friday", dt.date(2026, 11, 27)),
        (dt.date(2026, 11, 26), "next friday", dt.date(2026, 11, 27)),
        # Friday 2026-11-27: "this friday" is today, "next friday" a week later.
        (dt.date(2026, 11, 27), "this friday", dt.date(2026, 11, 27)),
        (dt.date(2026, 11, 27), "next friday", dt.date(2026, 12, 4)),
        # Saturday 2026-11-28: every form looks forward, never back.
        (dt.date(2026, 11, 28), "friday", dt.date(2026, 12, 4)),
        (dt.date(2026, 11, 28), "this friday", dt.date(2026, 12, 4)),
        (dt.date(2026, 11, 28), "next friday", dt.date(2026, 12, 4)),
    ],
)
def test_a_weekday_is_the_next_one_with_this_allowing_today_and_next_skipping_it(
    weekday_now: dt.date, phrase: str, date: dt.date
) -> None:
    now = dt.datetime.combine(weekday_now, dt.time(10), tzinfo=BERLIN)

    assert due_from_phrase(phrase, now, "Europe/Berlin").date == date


def test_a_wall_time_keeps_its_clock_across_a_dst_switch() -> None:
    before_switch = dt.datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN)

    due = due_from_phrase("tomorrow 9am", before_switch, "Europe/Berlin")

    assert due.at == dt.datetime(2027, 3, 28, 7, 0, tzinfo=UTC)
    assert due.local == dt.datetime(2027, 3, 28, 9, 0, tzinfo=BERLIN)


def test_a_wall_time_in_the_dst_gap_moves_forward() -> None:
    before_switch = dt.datetime(2027, 3, 27, 10, 0, tzinfo=BERLIN)

    due = due_from_phrase("tomorrow 02:30", before_switch, "Europe/Berlin")

    assert due.at == dt.datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    assert due.local == dt.datetime(2027, 3, 28, 3, 30, tzinfo=BERLIN)


def test_in_hours_adds_elapsed_time_exactly_even_across_a_dst_switch() -> None:
    night_of_switch = dt.datetime(2027, 3, 28, 1, 30, 15, tzinfo=BERLIN)

    due = due_from_phrase("in 2 hours", night_of_switch, "Europe/Berlin")

    assert due.at == night_of_switch.astimezone(UTC) + dt.timedelta(hours=2)
    assert due.local == dt.datetime(2027, 3, 28, 4, 30, 15, tzinfo=BERLIN)


@pytest.mark.parametrize(
    ("phrase", "problem"),
    [
        ("tonight", "does not say what time"),
        ("this evening", "does not say what time"),
        ("end of day", "does not say what time"),
        ("next week", "names a span, not a day"),
        ("this weekend", "names a span, not a day"),
        ("next month", "names a span, not a day"),
        ("end of the week", "names a span, not a day"),
        ("asap", "names a span, not a day"),
        ("end of month", "could mean the last day or the last working day"),
        ("midnight", "could start or end the day"),
        ("tomorrow at midnight", "could start or end the day"),
        ("tomorrow 12am", "is midnight"),
        ("at 5", "the bare number '5' could be 5am, 5pm or a day"),
        ("tomorrow 5", "the bare number '5' could be 5am, 5pm or a day"),
        ("friday at 17", "the bare number '17'"),
        ("tomorrow at 9:30", "could be 9:30 in the morning or the evening"),
        ("tomorrow 5:45", "could be 5:45 in the morning or the evening"),
        ("9am", "has already passed today"),
        ("thursday", "today is a Thursday"),
        ("thursday 5pm", "today is a Thursday"),
        ("12/1", "could be day/month or month/day"),
        ("1.12.2026", "could be day/month or month/day"),
        ("tomorrow 13pm", "is not a time of day"),
        ("tomorrow 25:00", "is not a time of day"),
        ("tomorrow 10:75", "is not a time of day"),
        ("in 0 days", "is not later than now"),
        ("in 9999 years", "too far ahead"),
        ("2026-02-30", "is not a calendar date"),
        ("december 5", "a bare number could be a time or a day"),
        ("in 2 hours at 5pm", "is not a date or a phrase Dueflow reads"),
        ("whenever", "is not a date or a phrase Dueflow reads"),
        ("yesterday-ish", "is not a date or a phrase Dueflow reads"),
        ("", "is empty"),
    ],
)
def test_a_due_phrase_that_needs_a_guess_is_refused_with_the_iso_form(
    phrase: str, problem: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        due_from_phrase(phrase, NOW, "Europe/Berlin")

    assert caught.value.field == "due"
    assert problem in caught.value.problem
    assert caught.value.message.startswith("due: ")
    assert "Fix: " in caught.value.message


@pytest.mark.parametrize(
    ("phrase", "fix"),
    [
        ("whenever", "write it as 2026-11-27 or 2026-11-27T17:00"),
        ("next week", "write the day, such as 2026-11-27"),
        ("tonight", "write it as today 20:00 or 2026-11-26T20:00"),
        ("end of month", "2026-11-30 for the last day of this month"),
        ("midnight", "write 2026-11-27T00:00 for the start of 2026-11-27"),
        ("9am", "write 2026-11-27T09:00"),
        ("thursday", "'next thursday' for a week from today, or write 2026-12-03"),
        ("at 5", "write 5am or 5pm"),
        ("tomorrow at 9:30", "write 9:30am or 9:30pm, or on the 24-hour clock 09:30 or 21:30"),
    ],
)
def test_a_due_refusal_suggests_the_exact_form_to_write_instead(phrase: str, fix: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        due_from_phrase(phrase, NOW, "Europe/Berlin")

    assert fix in caught.value.fix


def test_a_month_step_onto_a_missing_day_is_refused() -> None:
    end_of_january = dt.datetime(2027, 1, 31, 10, 0, tzinfo=BERLIN)

    with pytest.raises(ValidationFailed) as caught:
        due_from_phrase("in 1 month", end_of_january, "Europe/Berlin")

    assert "February 2027 does not have" in caught.value.problem


def test_an_unknown_zone_is_refused_on_the_timezone_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        due_from_phrase("tomorrow", NOW, "Mars/Olympus_Mons")

    assert caught.value.field == "timezone"


def test_a_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="aware"):
        due_from_phrase("tomorrow", dt.datetime(2026, 11, 26, 10, 0), "Europe/Berlin")
