"""Reminders: durations before due, absolute moments, and when each one fires."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.due import Due, parse_due
from domain.errors import ValidationFailed
from domain.reminder_specs import (
    Reminder,
    format_duration,
    parse_duration,
    parse_reminders,
    reminder_from_spec,
)

UTC = dt.UTC
TIMED = parse_due("2026-12-01T17:00", "Europe/Berlin", "UTC")  # 16:00 UTC
ALL_DAY = parse_due("2026-12-01", "Europe/Berlin", "UTC")


def _refusal(values: list[str], due: Due | None = TIMED) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        parse_reminders(values, due, "Europe/Berlin")
    assert caught.value.field == "reminders"
    assert "Fix:" in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("text", "lead", "spec"),
    [
        ("PT15M", dt.timedelta(minutes=15), "PT15M"),
        ("PT2H", dt.timedelta(hours=2), "PT2H"),
        ("P1D", dt.timedelta(days=1), "P1D"),
        ("P1W", dt.timedelta(days=7), "P7D"),
        ("P1DT2H30M", dt.timedelta(days=1, hours=2, minutes=30), "P1DT2H30M"),
        ("pt15m", dt.timedelta(minutes=15), "PT15M"),
        ("PT90M", dt.timedelta(minutes=90), "PT1H30M"),
    ],
)
def test_a_duration_reminder_counts_back_from_due_and_has_a_canonical_spec(
    text: str, lead: dt.timedelta, spec: str
) -> None:
    (reminder,) = parse_reminders([text], TIMED, "Europe/Berlin")

    assert reminder.before == lead
    assert reminder.at is None
    assert reminder.spec == spec


def test_an_absolute_reminder_with_an_offset_is_kept_as_a_utc_moment() -> None:
    (reminder,) = parse_reminders(["2026-12-01T09:00:00+01:00"], TIMED, "Europe/Berlin")

    assert reminder.at == dt.datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    assert reminder.spec == "2026-12-01T08:00:00Z"


def test_a_naive_absolute_reminder_is_read_as_wall_time_in_the_task_zone() -> None:
    (reminder,) = parse_reminders(["2026-07-01T09:00"], None, "America/New_York")

    assert reminder.at == dt.datetime(2026, 7, 1, 13, 0, tzinfo=UTC)


def test_an_absolute_reminder_needs_no_due() -> None:
    (reminder,) = parse_reminders(["2026-12-01T09:00Z"], None, "UTC")

    assert reminder.fire_at(None) == dt.datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("text", ["P1M", "P1Y", "P1Y2M", "p2m"])
def test_a_reminder_in_months_or_years_is_refused_because_their_length_varies(text: str) -> None:
    refusal = _refusal([text])

    assert "years or months" in refusal.problem


@pytest.mark.parametrize("text", ["-PT15M", "-P1D", " -pt5m "])
def test_a_negative_reminder_is_refused(text: str) -> None:
    refusal = _refusal([text])

    assert "negative" in refusal.problem


def test_a_reminder_more_than_a_year_before_due_is_refused() -> None:
    _refusal(["P366D"])


@pytest.mark.parametrize("text", ["P", "PT", "P1DT", "P1H", "PTX", "soon", ""])
def test_a_reminder_that_is_neither_a_duration_nor_a_date_time_is_refused(text: str) -> None:
    _refusal([text])


def test_a_relative_reminder_without_a_due_is_refused() -> None:
    refusal = _refusal(["PT15M"], due=None)

    assert "no due" in refusal.problem


def test_twenty_reminders_are_accepted() -> None:
    values = [f"PT{minutes}M" for minutes in range(1, 21)]

    assert len(parse_reminders(values, TIMED, "UTC")) == 20


def test_more_than_twenty_reminders_are_refused() -> None:
    values = [f"PT{minutes}M" for minutes in range(1, 22)]

    _refusal(values)


def test_duplicate_reminders_collapse_into_one() -> None:
    reminders = parse_reminders(
        ["PT15M", "pt15m", " PT15M ", "PT900S", "P1W", "P7D"], TIMED, "Europe/Berlin"
    )

    assert sorted(r.spec for r in reminders) == ["P7D", "PT15M"]


def test_duplicate_absolute_reminders_in_different_notations_collapse_into_one() -> None:
    reminders = parse_reminders(
        ["2026-12-01T09:00", "2026-12-01T08:00:00Z", "2026-12-01T09:00:00+01:00"],
        TIMED,
        "Europe/Berlin",
    )

    assert [r.spec for r in reminders] == ["2026-12-01T08:00:00Z"]


def test_a_duration_reminder_fires_that_long_before_a_timed_due() -> None:
    (reminder,) = parse_reminders(["PT15M"], TIMED, "Europe/Berlin")

    assert reminder.fire_at(TIMED) == dt.datetime(2026, 12, 1, 15, 45, tzinfo=UTC)


def test_a_duration_reminder_on_an_all_day_due_counts_back_from_nine_local() -> None:
    (reminder,) = parse_reminders(["PT1H"], ALL_DAY, "Europe/Berlin")

    # 09:00 Berlin (CET, +01:00) is 08:00 UTC; one hour before is 07:00 UTC
    assert reminder.fire_at(ALL_DAY) == dt.datetime(2026, 12, 1, 7, 0, tzinfo=UTC)


def test_a_one_day_reminder_on_an_all_day_due_fires_at_nine_local_the_day_before() -> None:
    summer = parse_due("2026-07-02", "Europe/Berlin", "UTC")
    (reminder,) = parse_reminders(["P1D"], summer, "Europe/Berlin")

    assert reminder.fire_at(summer) == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)


def test_a_relative_reminder_does_not_fire_when_nothing_is_due() -> None:
    assert Reminder(before=dt.timedelta(minutes=5)).fire_at(None) is None


def test_an_absolute_reminder_fires_at_its_moment_whatever_the_due() -> None:
    moment = dt.datetime(2026, 11, 30, 12, 0, tzinfo=UTC)

    assert Reminder(at=moment).fire_at(TIMED) == moment
    assert Reminder(at=moment).fire_at(ALL_DAY) == moment


@pytest.mark.parametrize(
    "values", [["PT15M"], ["P7D"], ["P1DT2H30M5S"], ["2026-12-01T08:00:00Z"], ["PT0S"]]
)
def test_reminder_from_spec_rebuilds_the_same_reminder(values: list[str]) -> None:
    (reminder,) = parse_reminders(values, TIMED, "Europe/Berlin")

    rebuilt = reminder_from_spec(reminder.spec)

    assert rebuilt == reminder
    assert rebuilt.spec == reminder.spec


@pytest.mark.parametrize(
    ("lead", "text"),
    [
        (dt.timedelta(0), "PT0S"),
        (dt.timedelta(seconds=45), "PT45S"),
        (dt.timedelta(hours=1), "PT1H"),
        (dt.timedelta(days=2, seconds=1), "P2DT1S"),
    ],
)
def test_format_duration_writes_the_shortest_iso_8601_form(lead: dt.timedelta, text: str) -> None:
    assert format_duration(lead) == text
    assert parse_duration(text) == lead
