"""The bounds on what the domain reads: the supported years, durations, RRULE parts, cursors and
NUL characters, each refused as a ValidationFailed naming its field."""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from domain.cursors import MAX_OFFSET, list_cursor, list_position, sort_cursor, sort_offset
from domain.due import EARLIEST_YEAR, LATEST_YEAR, Due, parse_due, parse_moment
from domain.errors import ValidationFailed
from domain.model import Task
from domain.query import Outlook, SortKey, TaskFilter, encode_cursor, moment_bound
from domain.recurrence import parse_recurrence, preview
from domain.reminder_specs import MAX_DURATION, parse_duration
from domain.text import check_text

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


def refusal(call: object, *args: object) -> ValidationFailed:
    assert callable(call)
    with pytest.raises(ValidationFailed) as caught:
        call(*args)
    return caught.value


@pytest.mark.parametrize(
    "text",
    [
        "1899-12-31",
        "3000-01-01",
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "2999-12-31T23:00:00-14:00",  # 3000 in UTC
        "1900-01-01T05:00:00+14:00",  # 1899 in UTC
    ],
)
def test_a_due_outside_the_supported_years_is_refused_on_due(text: str) -> None:
    refused = refusal(parse_due, text, "Etc/GMT-14", "UTC")

    assert refused.field == "due"
    assert f"{EARLIEST_YEAR}..{LATEST_YEAR}" in refused.problem


def test_a_due_whose_wall_time_in_its_zone_leaves_the_supported_years_is_refused() -> None:
    # 2999-12-31T20:00Z is fine in UTC, but 3000-01-01 in Kiritimati (+14)
    assert refusal(parse_due, "2999-12-31T20:00:00Z", "Pacific/Kiritimati", "UTC").field == "due"


@pytest.mark.parametrize("text", ["1900-01-01", "2999-12-31", "2999-12-31T23:59:59+00:00"])
def test_the_edges_of_the_supported_years_are_accepted(text: str) -> None:
    assert parse_due(text, "UTC", "UTC")


@pytest.mark.parametrize("field", ["due_before", "since", "until"])
def test_a_bound_outside_the_supported_years_is_refused_on_its_field(field: str) -> None:
    assert refusal(moment_bound, "0001-01-01", field, BERLIN).field == field
    assert refusal(moment_bound, "9999-12-31T23:59:59+14:00", field, BERLIN).field == field
    assert refusal(parse_moment, "9999-12-31T23:59:59", BERLIN, field).field == field


@pytest.mark.parametrize(
    "text", ["PT99999999999H", "P2147483648D", "PT9223372036854775807S", "P99999999999W"]
)
def test_a_duration_beyond_the_bound_is_refused_before_it_overflows(text: str) -> None:
    refused = refusal(parse_duration, text, "within", "use PT30M")

    assert refused.field == "within"
    assert f"longer than {MAX_DURATION.days} days" in refused.problem


def test_a_duration_of_thousands_of_digits_is_refused_as_not_a_duration() -> None:
    assert "not an ISO 8601 duration" in refusal(parse_duration, "PT" + "9" * 5000 + "S").problem


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=DAILY;UNTIL=99991231T235959Z",
        "FREQ=DAILY;UNTIL=30000101",
        "FREQ=MONTHLY;BYDAY=-99FR",
        "FREQ=MONTHLY;BYDAY=6FR",
        "FREQ=YEARLY;BYMONTH=1;BYDAY=6MO",
        "FREQ=YEARLY;BYDAY=54MO",
        "FREQ=WEEKLY;BYDAY=MO,FUNDAY",
        "FREQ=WEEKLY;WKST=XX",
    ],
)
def test_a_rule_part_out_of_range_is_refused_on_recurrence(rule: str) -> None:
    due = parse_due("2026-12-01T09:00", "Europe/Berlin", "UTC")

    assert refusal(parse_recurrence, rule, due).field == "recurrence"


@pytest.mark.parametrize("rule", ["FREQ=MONTHLY;BYDAY=-1FR", "FREQ=YEARLY;BYDAY=53MO,20TU"])
def test_ordinals_in_range_are_accepted(rule: str) -> None:
    due = parse_due("2026-12-01T09:00", "Europe/Berlin", "UTC")

    assert parse_recurrence(rule, due)


def test_a_series_ends_where_the_supported_years_do() -> None:
    due = parse_due("2998-06-01T09:00", "UTC", "UTC")

    assert [d.local.year for d in preview("FREQ=YEARLY", due, 5)] == [2998, 2999]  # type: ignore[union-attr]


def _task(due: Due) -> Task:
    return Task(id="t1", user_id="u", title="t", created_at=NOW, updated_at=NOW, due=due)


@pytest.mark.parametrize("zone", ["Etc/GMT+12", "Etc/GMT-14", "Europe/Berlin"])
@pytest.mark.parametrize(
    "at", [dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC), dt.datetime(1, 1, 1, tzinfo=UTC)]
)
def test_urgency_of_a_due_stored_at_the_calendars_edge_does_not_raise(
    zone: str, at: dt.datetime
) -> None:
    """Tasks written by an older version, before the bounds: still listed and scored."""
    task = _task(Due(zone, at=at))
    outlook = Outlook.at(NOW, ZoneInfo("Etc/GMT-14"))

    assert outlook.urgency(task) == (0.5 if at > NOW else 13.5)
    assert task.due is not None and task.due.to_json()["utc"]


WHERE = TaskFilter()


def test_the_cursors_the_server_issues_are_read_back() -> None:
    task = _task(Due("UTC", at=NOW))

    assert list_position(list_cursor(task, WHERE), WHERE) == (NOW, "t1")
    order = (SortKey("due", False),)
    assert sort_offset(sort_cursor(50, WHERE, order), WHERE, order) == 50


@pytest.mark.parametrize(
    "fields",
    [
        {"c": "2026-11-23T10:00:00", "i": "t1"},  # naive
        {"c": "2026-11-23T10:00:00+99:00", "i": "t1"},
        {"c": "0001-01-01T00:00:00+00:00", "i": "t1"},
        {"c": 5, "i": "t1"},
        {"c": "2026-11-23T10:00:00+00:00", "i": 5},
        {"c": "2026-11-23T10:00:00+00:00", "i": "t 1"},
        {"c": "2026-11-23T10:00:00+00:00", "i": "t\x00"},
        {"c": "2026-11-23T10:00:00+00:00"},
        {"c": "2026-11-23T10:00:00+00:00", "i": "t1", "x": 1},
    ],
)
def test_a_list_cursor_with_a_field_out_of_shape_is_refused(fields: dict[str, object]) -> None:
    task = _task(Due("UTC", at=NOW))
    issued = list_cursor(task, WHERE)

    fingerprint = json.loads(base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4)))["f"]
    forged = encode_cursor("list", {**fields, "f": fingerprint})

    assert refusal(list_position, forged, WHERE).field == "cursor"


@pytest.mark.parametrize("offset", [-5, MAX_OFFSET + 1, 10**30, True, "50", 1.5])
def test_a_sort_cursor_with_an_offset_out_of_range_is_refused(offset: object) -> None:
    order = (SortKey("due", False),)
    issued = sort_cursor(0, WHERE, order)

    data = json.loads(base64.urlsafe_b64decode(issued + "=" * (-len(issued) % 4)))
    forged = encode_cursor("sort", {"o": offset, "f": data["f"]})

    assert refusal(sort_offset, forged, WHERE, order).field == "cursor"


@pytest.mark.parametrize("field", ["title", "tags", "query", "task_id"])
def test_a_nul_character_is_refused_naming_its_field(field: str) -> None:
    refused = refusal(check_text, "a\x00b", field)

    assert refused.field == field and "NUL" in refused.problem
    assert check_text("a b", field) == "a b"
