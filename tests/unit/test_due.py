"""Due dates: all-day dates, UTC moments with a zone, DST edges and overdue in the user's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.due import Due, iso_utc, localize, parse_due, zone
from domain.errors import ValidationFailed

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def test_a_plain_date_is_an_all_day_due_in_the_given_zone() -> None:
    due = parse_due("2026-12-01", "Europe/Berlin", "UTC")

    assert due.all_day
    assert due.date == dt.date(2026, 12, 1)
    assert due.at is None
    assert due.timezone == "Europe/Berlin"
    assert due.local == dt.date(2026, 12, 1)


def test_a_plain_date_in_basic_iso_form_is_also_all_day() -> None:
    due = parse_due("20261201", "Europe/Berlin", "UTC")

    assert due.all_day
    assert due.date == dt.date(2026, 12, 1)


def test_an_all_day_due_starts_at_local_midnight() -> None:
    due = parse_due("2026-12-01", "Europe/Berlin", "UTC")

    assert due.instant == dt.datetime(2026, 11, 30, 23, 0, tzinfo=UTC)


def test_a_date_time_with_an_offset_becomes_a_utc_instant_kept_with_the_given_zone() -> None:
    due = parse_due("2026-12-01T17:00:00+01:00", "America/New_York", "Europe/Berlin")

    assert not due.all_day
    assert due.at == dt.datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert due.at is not None and due.at.utcoffset() == dt.timedelta(0)
    assert due.timezone == "America/New_York"
    assert due.local == dt.datetime(2026, 12, 1, 11, 0, tzinfo=NEW_YORK)


def test_a_date_time_with_an_offset_and_no_zone_takes_the_default_zone() -> None:
    due = parse_due("2026-12-01T17:00:00Z", None, "Europe/Berlin")

    assert due.at == dt.datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
    assert due.timezone == "Europe/Berlin"


def test_a_naive_date_time_is_read_as_wall_time_in_the_given_zone() -> None:
    due = parse_due("2026-12-01T17:00", "America/New_York", "Europe/Berlin")

    assert due.at == dt.datetime(2026, 12, 1, 22, 0, tzinfo=UTC)
    assert due.timezone == "America/New_York"


def test_a_naive_date_time_without_a_zone_is_read_in_the_default_zone() -> None:
    due = parse_due("2026-07-01T09:00", None, "Europe/Berlin")

    assert due.at == dt.datetime(2026, 7, 1, 7, 0, tzinfo=UTC)
    assert due.timezone == "Europe/Berlin"


def test_a_wall_time_in_the_spring_forward_gap_moves_forward_to_summer_time() -> None:
    due = parse_due("2026-03-29T02:30", "Europe/Berlin", "UTC")

    assert due.at == dt.datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    local = due.local
    assert isinstance(local, dt.datetime)
    assert (local.hour, local.minute) == (3, 30)
    assert local.utcoffset() == dt.timedelta(hours=2)
    assert local.tzname() == "CEST"


def test_an_ambiguous_wall_time_in_the_fall_back_hour_takes_the_first_occurrence() -> None:
    due = parse_due("2026-10-25T02:30", "Europe/Berlin", "UTC")

    assert due.at == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    local = due.local
    assert isinstance(local, dt.datetime)
    assert (local.hour, local.minute) == (2, 30)
    assert local.utcoffset() == dt.timedelta(hours=2)
    assert local.tzname() == "CEST"


@pytest.mark.parametrize("name", ["Europe/Nowhere", "", " UTC", "/etc/passwd", "../UTC", "utc+1"])
def test_an_unknown_time_zone_is_refused_on_the_timezone_field_with_a_fix(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_due("2026-12-01", name, "UTC")

    assert caught.value.field == "timezone"
    assert "Fix:" in caught.value.message


def test_zone_names_the_field_it_is_asked_to_blame() -> None:
    with pytest.raises(ValidationFailed) as caught:
        zone("Mars/Olympus_Mons", "default timezone")

    assert caught.value.field == "default timezone"


def test_zone_answers_the_iana_zone_for_a_known_name() -> None:
    assert zone("Europe/Berlin") == BERLIN


@pytest.mark.parametrize(
    "text", ["tomorrow", "", "   ", "2026-13-01", "2026-02-30", "2026-12-01T25:00", "next friday"]
)
def test_a_due_that_is_not_iso_8601_is_refused_on_the_due_field_with_a_fix(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_due(text, "Europe/Berlin", "UTC")

    assert caught.value.field == "due"
    assert "Fix:" in caught.value.message


def test_a_due_is_either_all_day_or_timed_never_both() -> None:
    with pytest.raises(ValueError):
        Due(timezone="UTC", date=dt.date(2026, 12, 1), at=dt.datetime(2026, 12, 1, tzinfo=UTC))
    with pytest.raises(ValueError):
        Due(timezone="UTC")


def test_a_timed_due_must_be_stored_in_utc() -> None:
    with pytest.raises(ValueError):
        Due(timezone="Europe/Berlin", at=dt.datetime(2026, 12, 1, 17, 0, tzinfo=BERLIN))


def test_a_timed_due_is_overdue_once_its_moment_has_passed() -> None:
    due = Due(timezone="Europe/Berlin", at=dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC))

    assert due.is_overdue(dt.datetime(2026, 11, 23, 9, 0, 1, tzinfo=UTC), BERLIN)
    assert not due.is_overdue(dt.datetime(2026, 11, 23, 9, 0, tzinfo=UTC), BERLIN)
    assert not due.is_overdue(dt.datetime(2026, 11, 23, 8, 59, tzinfo=UTC), BERLIN)


def test_an_all_day_due_of_today_in_the_user_zone_is_not_overdue() -> None:
    due = Due(timezone="Europe/Berlin", date=dt.date(2026, 11, 23))
    late_evening_in_berlin = dt.datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 local

    assert not due.is_overdue(late_evening_in_berlin, BERLIN)


def test_an_all_day_due_of_yesterday_in_the_user_zone_is_overdue() -> None:
    due = Due(timezone="Europe/Berlin", date=dt.date(2026, 11, 22))
    just_after_midnight_in_berlin = dt.datetime(2026, 11, 22, 23, 30, tzinfo=UTC)  # 00:30 local

    assert due.is_overdue(just_after_midnight_in_berlin, BERLIN)


def test_overdue_for_an_all_day_due_is_judged_by_the_user_zone_not_utc() -> None:
    due = Due(timezone="UTC", date=dt.date(2026, 11, 22))
    now = dt.datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # still the 22nd in New York

    assert due.is_overdue(now, ZoneInfo("UTC"))
    assert not due.is_overdue(now, NEW_YORK)


def test_to_json_of_a_timed_due_shows_local_time_and_utc_with_a_z() -> None:
    due = parse_due("2026-12-01T17:00", "Europe/Berlin", "UTC")

    assert due.to_json() == {
        "datetime": "2026-12-01T17:00:00+01:00",
        "utc": "2026-12-01T16:00:00Z",
        "timezone": "Europe/Berlin",
        "all_day": False,
    }


def test_to_json_of_an_all_day_due_shows_the_date() -> None:
    due = parse_due("2026-12-01", "Europe/Berlin", "UTC")

    assert due.to_json() == {"date": "2026-12-01", "timezone": "Europe/Berlin", "all_day": True}


def test_iso_utc_writes_any_aware_moment_in_utc_with_a_z() -> None:
    assert iso_utc(dt.datetime(2026, 12, 1, 17, 0, tzinfo=BERLIN)) == "2026-12-01T16:00:00Z"


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "UTC"]


def _in_gap(wall: dt.datetime, tz: ZoneInfo) -> bool:
    """A wall time the clocks skip: the offset after the transition is larger than before."""
    before = wall.replace(tzinfo=tz, fold=0).utcoffset()
    after = wall.replace(tzinfo=tz, fold=1).utcoffset()
    assert before is not None and after is not None
    return before < after


@settings(database=None, max_examples=300)
@given(
    wall=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2037, 12, 31)),
    name=st.sampled_from(ZONES),
)
def test_localize_round_trips_every_wall_time_outside_a_dst_gap(
    wall: dt.datetime, name: str
) -> None:
    tz = ZoneInfo(name)
    if _in_gap(wall, tz):
        return
    moment = localize(wall, tz)

    assert moment.utcoffset() == dt.timedelta(0)
    assert moment.astimezone(tz).replace(tzinfo=None) == wall


@settings(database=None, max_examples=300)
@given(
    wall=st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2037, 12, 31)),
    name=st.sampled_from(ZONES),
)
def test_localize_never_lands_before_the_wall_time_it_was_given(
    wall: dt.datetime, name: str
) -> None:
    tz = ZoneInfo(name)

    assert localize(wall, tz).astimezone(tz).replace(tzinfo=None) >= wall
