"""Listings: sort keys, cursors and the urgency score."""

from __future__ import annotations

import base64
import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest

from domain.due import Due, parse_due
from domain.errors import ValidationFailed
from domain.model import Priority, Status, Task
from domain.query import SortKey, check_limit, decode_cursor, encode_cursor, parse_sort, urgency

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _task(
    priority: Priority = Priority.NONE,
    due: Due | None = None,
    created_at: dt.datetime = NOW,
    status: Status = Status.OPEN,
) -> Task:
    return Task(
        id="t1",
        user_id="alice",
        title="Pay rent",
        created_at=created_at,
        updated_at=created_at,
        priority=priority,
        due=due,
        status=status,
    )


@pytest.mark.parametrize(
    ("text", "field", "descending"),
    [
        ("priority", "priority", True),
        ("urgency", "urgency", True),
        ("updated", "updated", True),
        ("due", "due", False),
        ("created", "created", False),
        ("title", "title", False),
        ("priority:asc", "priority", False),
        ("due:desc", "due", True),
        (" DUE:DESC ", "due", True),
    ],
)
def test_a_sort_key_without_a_direction_puts_the_most_pressing_first(
    text: str, field: str, descending: bool
) -> None:
    key = SortKey.parse(text)

    assert (key.field, key.descending) == (field, descending)


def test_a_sort_key_prints_with_its_direction() -> None:
    assert str(SortKey.parse("priority")) == "priority:desc"
    assert str(SortKey.parse("due")) == "due:asc"


@pytest.mark.parametrize("text", ["colour", "", "due:up", "priority:descending", "due:asc:desc"])
def test_a_bad_sort_key_or_direction_is_refused_on_the_sort_field(text: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        SortKey.parse(text)

    assert caught.value.field == "sort"
    assert "Fix:" in caught.value.message


def test_parse_sort_reads_keys_in_order() -> None:
    assert [str(k) for k in parse_sort(["urgency", "due:asc"])] == ["urgency:desc", "due:asc"]


@pytest.mark.parametrize("keys", [[], ["due", "due:desc"], ["title", "TITLE"]])
def test_parse_sort_refuses_no_keys_or_a_key_named_twice(keys: list[str]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_sort(keys)

    assert caught.value.field == "sort"


@pytest.mark.parametrize("limit", [0, -1, 201])
def test_a_page_limit_outside_1_to_200_is_refused(limit: int) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_limit(limit)

    assert caught.value.field == "limit"


def test_a_cursor_decodes_to_the_data_it_was_encoded_with() -> None:
    data = {"o": 50, "f": "abc123", "after": "2026-11-23T10:00:00Z"}

    fields = {"o": int, "f": str, "after": str}

    assert decode_cursor(encode_cursor("sort", data), "sort", fields) == data


def _cursor_of(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "",
        "!!!!",
        encode_cursor("sort", {"o": 50})[:-3],
        encode_cursor("sort", {"o": 50}) + "x",
        encode_cursor("list", {"o": 50}),
        _cursor_of(b"[1, 2]"),
        _cursor_of(b'{"o": 50}'),
        _cursor_of(b'"k"'),
        _cursor_of(b"\xff\xfe"),
        _cursor_of(b"[" * 10_000),
    ],
)
def test_a_tampered_cursor_is_refused_on_the_cursor_field(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, "sort", {"o": int})

    assert caught.value.field == "cursor"
    assert "Fix:" in caught.value.message


def test_an_overdue_urgent_task_is_more_pressing_than_a_none_task_due_next_week() -> None:
    overdue_urgent = _task(Priority.URGENT, parse_due("2026-11-20", "Europe/Berlin", "UTC"))
    next_week_none = _task(Priority.NONE, parse_due("2026-11-30", "Europe/Berlin", "UTC"))

    assert urgency(overdue_urgent, NOW, BERLIN) > urgency(next_week_none, NOW, BERLIN)


@pytest.mark.parametrize(
    ("priority", "due", "score"),
    [
        (Priority.NONE, None, 0.0),
        (Priority.LOW, None, 2.0),
        (Priority.MEDIUM, None, 4.0),
        (Priority.HIGH, None, 6.0),
        (Priority.URGENT, None, 8.0),
        (Priority.URGENT, "2026-11-20", 8.0 + 10.0 + 1.5),  # three days late
        (Priority.NONE, "2026-11-01", 10.0 + 3.5),  # late more than 7 days: capped
        (Priority.NONE, "2026-11-23", 8.0),  # due today
        (Priority.NONE, "2026-11-24", 7.0),  # due tomorrow
        (Priority.NONE, "2026-11-30", 1.0),  # due in 7 days
        (Priority.NONE, "2026-12-01", 0.5),  # due later
        (Priority.HIGH, "2026-11-23T09:00", 6.0 + 10.0),  # an hour late today
        (Priority.HIGH, "2026-11-23T18:00", 6.0 + 8.0),  # later today
    ],
)
def test_urgency_adds_priority_weight_and_due_pressure_as_documented(
    priority: Priority, due: str | None, score: float
) -> None:
    task = _task(priority, parse_due(due, "Europe/Berlin", "UTC") if due else None)

    assert urgency(task, NOW, BERLIN) == score


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.DELETED])
def test_a_task_that_is_not_open_has_no_urgency(status: Status) -> None:
    task = _task(Priority.URGENT, parse_due("2026-11-01", "Europe/Berlin", "UTC"), status=status)

    assert urgency(task, NOW, BERLIN) == 0.0


@pytest.mark.parametrize(
    ("age_days", "bonus"), [(0, 0.0), (15, 0.5), (30, 1.0), (60, 2.0), (365, 2.0)]
)
def test_age_adds_one_a_month_up_to_two(age_days: int, bonus: float) -> None:
    task = _task(created_at=NOW - dt.timedelta(days=age_days))

    assert urgency(task, NOW, BERLIN) == bonus


def test_a_task_created_in_the_future_gains_no_age() -> None:
    assert urgency(_task(created_at=NOW + dt.timedelta(days=3)), NOW, BERLIN) == 0.0


def test_today_for_urgency_is_the_user_zone_day() -> None:
    late_evening = dt.datetime(2026, 11, 23, 23, 30, tzinfo=UTC)  # already the 24th in Berlin
    task = _task(due=parse_due("2026-11-24", "Europe/Berlin", "UTC"), created_at=late_evening)

    assert urgency(task, late_evening, BERLIN) == 8.0
    assert urgency(task, late_evening, ZoneInfo("UTC")) == 7.0


def test_a_cursor_is_url_safe_text() -> None:
    cursor = encode_cursor("list", {"after": "?/+=", "o": 1})

    assert "=" not in cursor
    assert json.loads(base64.urlsafe_b64decode(cursor + "==="))["k"] == "list"
