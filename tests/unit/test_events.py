"""Domain events: the v1 envelope and where each type travels."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from zoneinfo import ZoneInfo

import pytest

from domain.events import EventType, TaskEvent

BERLIN = ZoneInfo("Europe/Berlin")
SNAPSHOT = {"id": "t1", "title": "Pay rent", "status": "completed", "version": 2}


def _event(**values: object) -> TaskEvent:
    fields: dict[str, object] = {
        "event_type": EventType.TASK_COMPLETED,
        "task_id": "t1",
        "user_id": "alice",
        "sequence": 2,
        "timestamp": dt.datetime(2026, 11, 23, 11, 0, tzinfo=BERLIN),
        "task": SNAPSHOT,
        "changes": {"status": ["open", "completed"]},
        "source": "dueflow/mcp",
        "correlation_id": "corr-1",
        "causation_id": "cause-1",
    }
    fields.update(values)
    return TaskEvent(**fields)  # type: ignore[arg-type]


def test_the_envelope_carries_exactly_the_v1_fields() -> None:
    envelope = _event().envelope()

    assert set(envelope) == {
        "event_id",
        "event_type",
        "task_id",
        "user_id",
        "sequence",
        "timestamp",
        "payload",
        "metadata",
    }
    assert envelope["event_type"] == "TASK_COMPLETED"
    assert envelope["task_id"] == "t1"
    assert envelope["user_id"] == "alice"
    assert envelope["sequence"] == 2
    assert envelope["payload"] == {"task": SNAPSHOT, "changes": {"status": ["open", "completed"]}}
    assert envelope["metadata"] == {
        "source": "dueflow/mcp",
        "version": "v1",
        "correlation_id": "corr-1",
        "causation_id": "cause-1",
    }


def test_the_envelope_timestamp_is_rfc_3339_in_utc_with_a_z() -> None:
    timestamp = _event().envelope()["timestamp"]

    assert timestamp == "2026-11-23T10:00:00Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", timestamp)


def test_each_event_gets_its_own_uuid_event_id() -> None:
    first, second = _event().envelope(), _event().envelope()

    assert uuid.UUID(first["event_id"]).version == 4
    assert first["event_id"] != second["event_id"]


def test_an_event_without_correlation_carries_nulls_in_metadata() -> None:
    envelope = _event(correlation_id=None, causation_id=None).envelope()

    assert envelope["metadata"]["correlation_id"] is None
    assert envelope["metadata"]["causation_id"] is None


def test_the_envelope_is_json_serialisable() -> None:
    envelope = _event().envelope()

    assert json.loads(json.dumps(envelope)) == envelope


def test_an_event_is_frozen() -> None:
    event = _event()

    with pytest.raises(AttributeError):
        event.sequence = 3  # type: ignore[misc]


@pytest.mark.parametrize("event_type", [t for t in EventType if t.value.startswith("TASK_")])
def test_task_events_go_to_task_events_and_task_updates(event_type: EventType) -> None:
    assert event_type.topics == ("task-events", "task-updates")


@pytest.mark.parametrize("event_type", [t for t in EventType if t.value.startswith("REMINDER_")])
def test_reminder_events_go_to_reminders_only(event_type: EventType) -> None:
    assert event_type.topics == ("reminders",)


def test_the_event_types_are_the_ten_of_contract_v1_plus_reminder_delivered() -> None:
    assert {t.value for t in EventType} == {
        "TASK_CREATED",
        "TASK_UPDATED",
        "TASK_COMPLETED",
        "TASK_REOPENED",
        "TASK_DELETED",
        "TASK_RESTORED",
        "TASK_RECURRED",
        "REMINDER_SCHEDULED",
        "REMINDER_CANCELLED",
        "REMINDER_TRIGGERED",
        "REMINDER_DELIVERED",
    }


@pytest.mark.parametrize(
    ("event_type", "cloudevent_type"),
    [
        (EventType.TASK_CREATED, "dueflow.task_created.v1"),
        (EventType.TASK_RECURRED, "dueflow.task_recurred.v1"),
        (EventType.REMINDER_TRIGGERED, "dueflow.reminder_triggered.v1"),
    ],
)
def test_the_cloudevent_type_is_dueflow_dot_lower_name_dot_v1(
    event_type: EventType, cloudevent_type: str
) -> None:
    assert event_type.cloudevent_type == cloudevent_type
