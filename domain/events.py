"""Domain events (contract v1) and the topics they travel on."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from domain.due import iso_utc

if TYPE_CHECKING:
    from domain.model import Task

CONTRACT_VERSION = "v1"
TOPIC_TASK_EVENTS = "task-events"
TOPIC_TASK_UPDATES = "task-updates"
TOPIC_REMINDERS = "reminders"


class EventType(StrEnum):
    TASK_CREATED = "TASK_CREATED"
    TASK_UPDATED = "TASK_UPDATED"
    TASK_COMPLETED = "TASK_COMPLETED"
    TASK_REOPENED = "TASK_REOPENED"
    TASK_DELETED = "TASK_DELETED"
    TASK_RESTORED = "TASK_RESTORED"
    TASK_RECURRED = "TASK_RECURRED"
    REMINDER_SCHEDULED = "REMINDER_SCHEDULED"
    REMINDER_CANCELLED = "REMINDER_CANCELLED"
    REMINDER_TRIGGERED = "REMINDER_TRIGGERED"
    REMINDER_DELIVERED = "REMINDER_DELIVERED"  # one channel's outcome: delivered, skipped or dead

    @property
    def topics(self) -> tuple[str, ...]:
        """Where an event of this type is published."""
        if self.value.startswith("REMINDER_"):
            return (TOPIC_REMINDERS,)
        return (TOPIC_TASK_EVENTS, TOPIC_TASK_UPDATES)

    @property
    def cloudevent_type(self) -> str:
        return f"dueflow.{self.value.lower()}.{CONTRACT_VERSION}"


@dataclass(frozen=True, kw_only=True)
class TaskEvent:
    """Something that happened to one task, as recorded in the outbox."""

    event_type: EventType
    task_id: str
    user_id: str
    sequence: int
    timestamp: dt.datetime
    task: dict[str, Any]
    changes: dict[str, list[Any]]
    source: str
    correlation_id: str | None = None
    causation_id: str | None = None
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    details: dict[str, Any] = field(default_factory=dict)  # more payload keys, e.g. `reminder`

    def envelope(self) -> dict[str, Any]:
        """The JSON envelope of contract v1 (the CloudEvent `data`)."""
        return {
            "event_id": self.event_id,
            "event_type": self.event_type.value,
            "task_id": self.task_id,
            "user_id": self.user_id,
            "sequence": self.sequence,
            "timestamp": iso_utc(self.timestamp),
            "payload": {**self.details, "task": self.task, "changes": self.changes},
            "metadata": {
                "source": self.source,
                "version": CONTRACT_VERSION,
                "correlation_id": self.correlation_id,
                "causation_id": self.causation_id,
            },
        }


def task_event(
    kind: EventType,
    task: Task,
    changes: dict[str, list[Any]],
    now: dt.datetime,
    *,
    source: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> TaskEvent:
    """The event of a change to `task`, which is already at its new version."""
    return TaskEvent(
        event_type=kind,
        task_id=task.id,
        user_id=task.user_id,
        sequence=task.version,
        timestamp=now,
        task=task.snapshot(),
        changes=changes,
        source=source,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


def created_event(
    task: Task,
    now: dt.datetime,
    *,
    source: str,
    correlation_id: str | None = None,
    causation_id: str | None = None,
) -> TaskEvent:
    """The TASK_CREATED event of a new task: every field that is set, as a change from nothing."""
    snapshot = task.snapshot()
    return TaskEvent(
        event_type=EventType.TASK_CREATED,
        task_id=task.id,
        user_id=task.user_id,
        sequence=task.version,
        timestamp=now,
        task=snapshot,
        changes={name: [None, value] for name, value in snapshot.items() if value},
        source=source,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
