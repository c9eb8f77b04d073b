"""The reminder schedule: when each reminder of a task fires, and whether a firing still holds.

Rules only; the reminders worker keeps the schedule, and a timer (embedded) or the Dapr
scheduler (one job per reminder) wakes it at each moment.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.due import UTC, Due, iso_utc
from domain.reminder_specs import reminder_from_spec

SNOOZE = "snooze"  # the spec of the one snoozed reminder a task may have
# A reminder fired this much after its moment is reported as late (it was missed while down).
LATE_AFTER = dt.timedelta(seconds=30)


class ReminderState(StrEnum):
    PENDING = "pending"  # waiting for its moment
    FIRED = "fired"  # REMINDER_TRIGGERED was recorded
    CANCELLED = "cancelled"  # the task was completed or deleted, or the reminder removed or moved
    DISMISSED = "dismissed"  # the user dismissed it
    STALE = "stale"  # its moment came but the task had changed: dropped, with the reason
    PASSED = "passed"  # its moment was already past when it was set: never fires


@dataclass(frozen=True, slots=True)
class ScheduledReminder:
    """One reminder of one task at one moment; `id` is also its Dapr job name."""

    id: str
    user_id: str
    task_id: str
    spec: str
    fire_at: dt.datetime
    task_version: int
    state: ReminderState
    fired_at: dt.datetime | None = None
    late: bool = False
    reason: str | None = None

    @property
    def snoozed(self) -> bool:
        return self.spec == SNOOZE

    def as_json(self) -> dict[str, Any]:
        """How reminder events carry it (`payload.reminder`)."""
        return {
            "reminder_id": self.id,
            "spec": self.spec,
            "fire_at": iso_utc(self.fire_at),
            "state": self.state.value,
            "fired_at": iso_utc(self.fired_at) if self.fired_at else None,
            "late": self.late,
            "reason": self.reason,
        }


def reminder_id(task_id: str, spec: str) -> str:
    """The deterministic id (and Dapr job name) of a task's reminder: rescheduling overwrites."""
    digest = hashlib.sha256(spec.encode()).hexdigest()[:12]
    return f"reminder-{task_id}-{digest}"


def due_from_json(value: Mapping[str, Any] | None) -> Due | None:
    """The due of a task snapshot (as events carry it)."""
    if not value:
        return None
    if value.get("all_day"):
        return Due(value["timezone"], date=dt.date.fromisoformat(value["date"]))
    at = dt.datetime.fromisoformat(value["utc"].replace("Z", "+00:00")).astimezone(UTC)
    return Due(value["timezone"], at=at)


def planned_reminders(snapshot: Mapping[str, Any]) -> dict[str, tuple[str, dt.datetime]]:
    """What a task snapshot should fire: reminder id -> (spec, UTC moment); nothing unless open.

    Relative reminders count back from the current due, so re-dating a task moves them."""
    if snapshot.get("status") != "open":
        return {}
    due = due_from_json(snapshot.get("due"))
    planned: dict[str, tuple[str, dt.datetime]] = {}
    for spec in snapshot.get("reminders") or []:
        moment = reminder_from_spec(spec).fire_at(due)
        if moment is not None:
            planned[reminder_id(snapshot["id"], spec)] = (spec, moment)
    return planned


def still_due(reminder: ScheduledReminder, snapshot: Mapping[str, Any] | None) -> str | None:
    """Why a reminder whose moment came must not fire any more, or None when it still holds."""
    if snapshot is None:
        return "the task no longer exists"
    status = snapshot.get("status")
    if status != "open":
        return f"the task is {status}"
    if reminder.snoozed:
        return None
    plan = planned_reminders(snapshot).get(reminder.id)
    if plan is None:
        return "the reminder was removed from the task"
    if plan[1] != reminder.fire_at:
        return f"the task was re-dated: the reminder now fires at {iso_utc(plan[1])}"
    return None


def is_late(fire_at: dt.datetime, fired_at: dt.datetime) -> bool:
    return fired_at - fire_at > LATE_AFTER
