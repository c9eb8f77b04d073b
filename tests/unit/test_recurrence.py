"""Recurrence rules: what validate_rule accepts, how it normalises, and what it refuses."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from domain.due import parse_due
from domain.errors import ValidationFailed
from domain.recurrence import build_rule, normalize_rule, validate_rule

DUE = parse_due("2026-12-01T09:00", "Europe/Berlin", "UTC")
ALL_DAY = parse_due("2026-12-01", "Europe/Berlin", "UTC")


def _refusal(rule: str) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        validate_rule(rule, DUE)
    assert caught.value.field == "recurrence"
    assert "Fix:" in caught.value.message
    return caught.value


@pytest.mark.parametrize(
    ("rule", "normal"),
    [
        ("FREQ=DAILY", "FREQ=DAILY"),
        ("freq=weekly;byday=mo,we", "FREQ=WEEKLY;BYDAY=MO,WE"),
        ("RRULE:FREQ=MONTHLY;BYMONTHDAY=-1", "FREQ=MONTHLY;BYMONTHDAY=-1"),
        ("rrule:freq=daily;count=3", "FREQ=DAILY;COUNT=3"),
        ("  BYDAY=FR ; FREQ=WEEKLY ; INTERVAL=2 ;", "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR"),
    ],
)
def test_validate_rule_answers_the_rule_upper_cased_without_prefix_in_canonical_order(
    rule: str, normal: str
) -> None:
    assert validate_rule(rule, DUE) == normal


@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY", "FORTNIGHTLY"])
def test_a_frequency_finer_than_hourly_or_unknown_is_refused(freq: str) -> None:
    refusal = _refusal(f"FREQ={freq}")

    assert freq in refusal.problem


def test_a_rule_without_freq_is_refused() -> None:
    refusal = _refusal("INTERVAL=2;BYDAY=MO")

    assert "FREQ" in refusal.problem


def test_a_rule_with_both_count_and_until_is_refused() -> None:
    refusal = _refusal("FREQ=DAILY;COUNT=5;UNTIL=20261231T000000Z")

    assert "COUNT and UNTIL" in refusal.problem


@pytest.mark.parametrize("rule", ["FREQ=DAILY;COLOR=RED", "FREQ=DAILY;DTSTART=20261201"])
def test_a_rule_with_an_unknown_part_is_refused(rule: str) -> None:
    _refusal(rule)


@pytest.mark.parametrize(
    "rule", ["FREQ=DAILY;INTERVAL", "FREQ=DAILY;COUNT=", "FREQ=DAILY;FREQ=WEEKLY"]
)
def test_a_rule_with_a_malformed_or_repeated_part_is_refused(rule: str) -> None:
    _refusal(rule)


@pytest.mark.parametrize("byday", ["XX", "1", "MO,XY", "MONDAY"])
def test_a_rule_with_a_garbage_byday_is_refused(byday: str) -> None:
    _refusal(f"FREQ=WEEKLY;BYDAY={byday}")


@pytest.mark.parametrize("rule", ["", "   ", "RRULE:"])
def test_an_empty_rule_is_refused(rule: str) -> None:
    _refusal(rule)


def test_a_rule_with_count_zero_is_refused_as_out_of_range() -> None:
    refusal = _refusal("FREQ=DAILY;COUNT=0")

    assert "COUNT=0" in refusal.problem and "1..100000" in refusal.fix


def test_a_rule_whose_until_is_before_due_has_no_occurrence_and_is_refused() -> None:
    refusal = _refusal("FREQ=DAILY;UNTIL=20261130T000000Z")

    assert "no occurrence" in refusal.problem


def test_a_day_that_never_exists_in_the_month_is_refused_before_any_search_for_it() -> None:
    # searching would walk to year 9999 (tests/bench/bench_recurrence.py times the refusal)
    with pytest.raises(ValidationFailed) as caught:
        validate_rule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", DUE)

    assert caught.value.field == "recurrence"
    assert "BYMONTHDAY never falls in the BYMONTH months" in caught.value.problem


@pytest.mark.parametrize("interval", ["0", "-1"])
def test_an_interval_that_is_not_positive_is_refused(interval: str) -> None:
    _refusal(f"FREQ=DAILY;INTERVAL={interval}")


def test_a_month_day_of_zero_is_refused() -> None:
    _refusal("FREQ=MONTHLY;BYMONTHDAY=0")


def test_a_rule_needs_a_due_to_anchor_it() -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_rule("FREQ=DAILY", None)

    assert caught.value.field == "recurrence"
    assert "due" in caught.value.problem


def test_an_until_in_utc_with_a_z_is_accepted_and_kept() -> None:
    assert validate_rule("FREQ=DAILY;UNTIL=20261231T235959Z", DUE) == (
        "FREQ=DAILY;UNTIL=20261231T235959Z"
    )


def test_an_until_as_a_date_is_accepted_and_includes_that_day() -> None:
    built = build_rule("FREQ=DAILY;UNTIL=20261203", DUE)

    assert list(built) == [
        dt.datetime(2026, 12, 1, 9, 0),
        dt.datetime(2026, 12, 2, 9, 0),
        dt.datetime(2026, 12, 3, 9, 0),
    ]


def test_a_malformed_until_is_refused() -> None:
    refusal = _refusal("FREQ=DAILY;UNTIL=next-year")

    assert "UNTIL" in refusal.problem


def test_an_all_day_due_anchors_its_series_at_local_midnight() -> None:
    built = build_rule("FREQ=WEEKLY;COUNT=2", ALL_DAY)

    assert list(built) == [dt.datetime(2026, 12, 1), dt.datetime(2026, 12, 8)]


def test_a_daily_series_keeps_its_local_wall_time_across_a_dst_change() -> None:
    march = parse_due("2026-03-28T09:00", "Europe/Berlin", "UTC")

    occurrences = list(itertools.islice(build_rule("FREQ=DAILY", march), 3))

    assert [o.time() for o in occurrences] == [dt.time(9, 0)] * 3
    assert [o.date() for o in occurrences] == [
        dt.date(2026, 3, 28),
        dt.date(2026, 3, 29),
        dt.date(2026, 3, 30),
    ]


def test_normalize_rule_splits_parts_upper_cased() -> None:
    assert normalize_rule("rrule:freq=weekly;byday=mo") == {"FREQ": "WEEKLY", "BYDAY": "MO"}


@pytest.mark.parametrize(
    ("rule", "part"),
    [
        ("FREQ=DAILY;BYMONTH=13", "BYMONTH"),
        ("FREQ=MONTHLY;BYMONTHDAY=32", "BYMONTHDAY"),
        ("FREQ=YEARLY;BYWEEKNO=54", "BYWEEKNO"),
    ],
)
def test_a_by_part_outside_its_range_is_refused_naming_the_part(rule: str, part: str) -> None:
    refusal = _refusal(rule)

    assert part in refusal.problem
