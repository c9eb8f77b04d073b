"""The task aggregate: field rules, priorities and status transitions with their diffs."""

from __future__ import annotations

import datetime as dt
import json
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.due import parse_due
from domain.errors import InvalidTransition, ValidationFailed
from domain.model import (
    Priority,
    Status,
    Task,
    check_description,
    check_title,
    normalize_tags,
)
from domain.recurrence import Recurrence, RecurrenceAnchor
from domain.reminder_specs import parse_reminders

UTC = dt.UTC
CREATED = dt.datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
LATER = dt.datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
LATEST = dt.datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def _task(**values: object) -> Task:
    task = Task(id="t1", user_id="alice", title="Pay rent", created_at=CREATED, updated_at=CREATED)
    for name, value in values.items():
        setattr(task, name, value)
    return task


def test_a_title_is_trimmed() -> None:
    assert check_title("  Pay rent \n") == "Pay rent"


@pytest.mark.parametrize("title", ["", "   ", "\t\n"])
def test_an_empty_title_is_refused(title: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_title(title)

    assert caught.value.field == "title"
    assert "Fix:" in caught.value.message


def test_a_title_of_500_characters_is_accepted_and_501_refused() -> None:
    assert check_title("x" * 500) == "x" * 500
    with pytest.raises(ValidationFailed) as caught:
        check_title("x" * 501)

    assert caught.value.field == "title"


def test_a_description_of_10000_characters_is_accepted_and_10001_refused() -> None:
    assert check_description("d" * 10_000) == "d" * 10_000
    with pytest.raises(ValidationFailed) as caught:
        check_description("d" * 10_001)

    assert caught.value.field == "description"


def test_tags_are_lower_cased_trimmed_and_de_duplicated_in_first_seen_order() -> None:
    assert normalize_tags([" Home ", "work", "HOME", "Errands", "work "]) == (
        "home",
        "work",
        "errands",
    )


def test_fifty_tags_are_accepted_and_fifty_one_refused() -> None:
    assert len(normalize_tags(f"t{i}" for i in range(50))) == 50
    with pytest.raises(ValidationFailed) as caught:
        normalize_tags(f"t{i}" for i in range(51))

    assert caught.value.field == "tags"


def test_fifty_one_tags_that_collapse_to_fifty_are_accepted() -> None:
    assert len(normalize_tags([*(f"t{i}" for i in range(50)), "T0"])) == 50


def test_a_tag_of_64_characters_is_accepted_and_65_refused() -> None:
    assert normalize_tags(["a" * 64]) == ("a" * 64,)
    with pytest.raises(ValidationFailed) as caught:
        normalize_tags(["a" * 65])

    assert caught.value.field == "tags"


@pytest.mark.parametrize("tag", ["", "  "])
def test_an_empty_tag_is_refused(tag: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalize_tags(["ok", tag])

    assert caught.value.field == "tags"


def test_tag_errors_name_the_field_they_are_asked_to_blame() -> None:
    with pytest.raises(ValidationFailed) as caught:
        normalize_tags([""], "all_tags")

    assert caught.value.field == "all_tags"


@settings(database=None)
# a NUL or a lone surrogate is refused (test_bounds, domain/text.py); any other text is a tag
@given(
    st.lists(
        st.text(
            st.characters(exclude_characters="\x00", exclude_categories=("Cs",)),
            min_size=1,
            max_size=20,
        ).filter(str.strip),
        max_size=30,
    )
)
def test_normalizing_tags_twice_changes_nothing(tags: list[str]) -> None:
    once = normalize_tags(tags)

    assert normalize_tags(once) == once
    assert len(set(once)) == len(once)


@pytest.mark.parametrize(
    ("priority", "ical"),
    [
        (Priority.URGENT, 1),
        (Priority.HIGH, 3),
        (Priority.MEDIUM, 5),
        (Priority.LOW, 9),
        (Priority.NONE, 0),
    ],
)
def test_each_priority_maps_to_its_icalendar_priority(priority: Priority, ical: int) -> None:
    assert priority.ical == ical


def test_priorities_rank_from_none_to_urgent() -> None:
    ranked = sorted(Priority, key=lambda p: p.rank)

    assert ranked == [Priority.NONE, Priority.LOW, Priority.MEDIUM, Priority.HIGH, Priority.URGENT]
    assert [Priority.from_rank(p.rank) for p in ranked] == ranked


def test_a_priority_is_parsed_case_insensitively_and_a_wrong_one_refused() -> None:
    assert Priority.parse(" High ") is Priority.HIGH
    with pytest.raises(ValidationFailed) as caught:
        Priority.parse("critical")

    assert caught.value.field == "priority"


def test_completing_an_open_task_answers_the_diff_and_bumps_version_and_updated_at() -> None:
    task = _task()

    changes = task.complete(LATER)

    assert changes == {
        "status": ["open", "completed"],
        "completed_at": [None, "2026-11-23T10:00:00Z"],
    }
    assert task.status is Status.COMPLETED
    assert task.version == 2
    assert task.updated_at == LATER


def test_completing_a_completed_task_again_changes_nothing() -> None:
    task = _task()
    task.complete(LATER)

    assert task.complete(LATEST) == {}
    assert task.version == 2
    assert task.updated_at == LATER
    assert task.completed_at == LATER


def test_reopening_a_completed_task_answers_the_diff_and_bumps_version() -> None:
    task = _task()
    task.complete(LATER)

    changes = task.reopen(LATEST)

    assert changes == {
        "status": ["completed", "open"],
        "completed_at": ["2026-11-23T10:00:00Z", None],
    }
    assert task.status is Status.OPEN
    assert task.version == 3
    assert task.updated_at == LATEST


def test_reopening_an_open_task_changes_nothing() -> None:
    task = _task()

    assert task.reopen(LATER) == {}
    assert task.version == 1
    assert task.updated_at == CREATED


def test_deleting_a_task_answers_the_diff_and_bumps_version() -> None:
    task = _task()

    changes = task.delete(LATER)

    assert changes == {"status": ["open", "deleted"], "deleted_at": [None, "2026-11-23T10:00:00Z"]}
    assert task.status is Status.DELETED
    assert task.version == 2
    assert task.updated_at == LATER


def test_deleting_a_deleted_task_again_changes_nothing() -> None:
    task = _task()
    task.delete(LATER)

    assert task.delete(LATEST) == {}
    assert task.version == 2


def test_restoring_a_deleted_open_task_returns_it_to_open() -> None:
    task = _task()
    task.delete(LATER)

    changes = task.restore(LATEST)

    assert changes == {"status": ["deleted", "open"], "deleted_at": ["2026-11-23T10:00:00Z", None]}
    assert task.status is Status.OPEN
    assert task.version == 3
    assert task.updated_at == LATEST


def test_restoring_a_completed_then_deleted_task_returns_it_to_completed() -> None:
    task = _task()
    task.complete(LATER)
    task.delete(LATER)

    changes = task.restore(LATEST)

    assert changes["status"] == ["deleted", "completed"]
    assert task.status is Status.COMPLETED
    assert task.completed_at == LATER
    assert task.deleted_at is None
    assert task.version == 4


def test_restoring_a_task_that_is_not_deleted_changes_nothing() -> None:
    task = _task()

    assert task.restore(LATER) == {}
    assert task.version == 1


def test_completing_a_deleted_task_is_an_invalid_transition() -> None:
    task = _task()
    task.delete(LATER)

    with pytest.raises(InvalidTransition):
        task.complete(LATEST)
    assert task.status is Status.DELETED
    assert task.version == 2


def test_reopening_a_deleted_task_is_an_invalid_transition() -> None:
    task = _task(status=Status.DELETED, deleted_at=LATER)

    with pytest.raises(InvalidTransition):
        task.reopen(LATEST)


def test_changing_a_deleted_task_is_an_invalid_transition_and_leaves_it_alone() -> None:
    task = _task()
    task.delete(LATER)

    with pytest.raises(InvalidTransition) as caught:
        task.change(LATEST, title="Pay rent twice")

    assert "restore" in caught.value.message
    assert task.title == "Pay rent"
    assert task.version == 2


def test_changing_fields_answers_only_the_fields_that_differ() -> None:
    task = _task()

    changes = task.change(LATER, title="Pay rent", priority=Priority.HIGH, tags=("home",))

    assert changes == {
        "priority": ["none", "high"],
        "ical_priority": [0, 3],
        "tags": [[], ["home"]],
    }
    assert task.version == 2
    assert task.updated_at == LATER


def test_changing_fields_to_their_current_values_changes_nothing() -> None:
    task = _task()

    assert task.change(LATER, title="Pay rent", priority=Priority.NONE) == {}
    assert task.version == 1
    assert task.updated_at == CREATED


def test_a_full_snapshot_is_json_serialisable() -> None:
    due = parse_due("2026-12-01T17:00", "Europe/Berlin", "UTC")
    task = _task(
        description="Before the 1st",
        priority=Priority.URGENT,
        tags=("home", "money"),
        due=due,
        reminders=parse_reminders(["PT15M", "2026-11-30T09:00"], due, "Europe/Berlin"),
        recurrence=Recurrence("FREQ=MONTHLY", RecurrenceAnchor.SCHEDULE, "series-1"),
    )
    task.complete(LATER)
    task.delete(LATEST)

    snapshot = json.loads(json.dumps(task.snapshot()))

    assert snapshot["status"] == "deleted"
    assert snapshot["ical_priority"] == 1
    assert snapshot["due"]["utc"] == "2026-12-01T16:00:00Z"
    assert snapshot["reminders"] == ["2026-11-30T08:00:00Z", "PT15M"]
    assert snapshot["recurrence"] == {
        "rule": "FREQ=MONTHLY",
        "anchor": "schedule",
        "series_id": "series-1",
        "occurrence": 1,
        "start": None,
        "exdates": [],
        "recurred_from": None,
        "recurred_to": None,
        "series_ended": False,
    }
    assert snapshot["completed_at"] == "2026-11-23T10:00:00Z"
    assert snapshot["deleted_at"] == "2026-11-24T10:00:00Z"
    assert snapshot["version"] == 3


def test_only_an_open_task_with_a_past_due_is_overdue() -> None:
    due = parse_due("2026-11-22", "Europe/Berlin", "UTC")
    berlin = ZoneInfo("Europe/Berlin")

    assert _task(due=due).is_overdue(LATER, berlin)
    assert not _task(due=due, status=Status.COMPLETED).is_overdue(LATER, berlin)
    assert not _task().is_overdue(LATER, berlin)
