"""The rules of update_task: what a patch of raw arguments does to a task's fields.

A due is read in the task's zone, reminders count back from the new due, and a recurring
task's series follows its due; so a patch is read against the task as it stands, outside any
unit of work, and the result is written only if the task is still at that version.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from domain.arguments import ArgumentReader, read_anchor
from domain.due import Due, localize, zone
from domain.errors import ValidationFailed
from domain.model import Priority, Task, check_description, check_title, normalize_tags
from domain.recurrence import Recurrence, RecurrenceAnchor, series_text
from domain.reminder_specs import Reminder, parse_reminders

# the fields whose reading needs nothing of the task: a patch of these alone is read up front
PLAIN_FIELDS = frozenset({"title", "description", "priority", "tags"})


def patched_values(task: Task, patch: Mapping[str, Any], read: ArgumentReader) -> dict[str, Any]:
    """The fields of `task` after `patch` (None clears a field), ready for Task.change."""
    values = plain_values(patch)
    zone_name = task.due.timezone if task.due else read.default_timezone
    if "timezone" in patch:
        zone_name = patch["timezone"] or read.default_timezone
        zone(zone_name)
    due = task.due
    if "due" in patch:
        raw = patch["due"]
        due = read.due(raw, zone_name) if raw is not None else None
    elif due is not None and zone_name != due.timezone:
        due = _rezone(due, zone_name)
    values["due"] = due
    values["reminders"] = _reminders(task, patch, due, zone_name)
    values["recurrence"] = _recurrence(task, patch, due, read)
    return values


def expands_rule(task: Task, patch: Mapping[str, Any]) -> bool:
    """Whether reading `patch` may expand an RRULE (a costly walk for some rules)."""
    return task.recurrence is not None or patch.get("recurrence") is not None


def plain_values(patch: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that read the same whatever the task (PLAIN_FIELDS), read from `patch`."""
    values: dict[str, Any] = {}
    if "title" in patch:
        if patch["title"] is None:
            raise ValidationFailed("title", "cannot be cleared", "give a new title instead")
        values["title"] = check_title(patch["title"])
    if "description" in patch:
        values["description"] = check_description(patch["description"] or "")
    if "priority" in patch:
        values["priority"] = Priority.parse(patch["priority"] or "none")
    if "tags" in patch:
        values["tags"] = normalize_tags(patch["tags"] or [])
    return values


def _reminders(
    task: Task, patch: Mapping[str, Any], due: Due | None, zone_name: str
) -> tuple[Reminder, ...]:
    if "reminders" in patch:
        return parse_reminders(patch["reminders"] or [], due, zone_name)
    if due is None and any(r.before is not None for r in task.reminders):
        raise ValidationFailed(
            "due",
            "cannot be cleared while relative reminders count back from it",
            "clear or replace reminders in the same call (reminders: null)",
        )
    return task.reminders


def _recurrence(
    task: Task, patch: Mapping[str, Any], due: Due | None, read: ArgumentReader
) -> Recurrence | None:
    current = task.recurrence
    if "recurrence_anchor" in patch:
        anchor = read_anchor(patch["recurrence_anchor"])
    else:
        anchor = current.anchor if current else RecurrenceAnchor.SCHEDULE
    if "recurrence" in patch:
        if patch["recurrence"] is None:
            return None
        series = current.series_id if current else str(uuid.uuid4())
        return read.series(patch["recurrence"], due, anchor, series)
    if current is None:
        if patch.get("recurrence_anchor") is not None:
            raise ValidationFailed(
                "recurrence_anchor", "applies only to a recurring task", "set recurrence as well"
            )
        return None
    if due is None:
        raise ValidationFailed(
            "due",
            "cannot be cleared on a recurring task",
            "clear recurrence in the same call (recurrence: null), or move due instead",
        )
    if due != task.due:
        # moving the date re-anchors the series on it and keeps the rule and exdates
        return read.series(series_text(current), due, anchor, current.series_id)
    if anchor is not current.anchor:
        return dataclasses.replace(current, anchor=anchor)
    return current


def _rezone(due: Due, zone_name: str) -> Due:
    """The same wall-clock due in another zone."""
    if due.date is not None:
        return Due(timezone=zone_name, date=due.date)
    wall = due.local
    assert isinstance(wall, dt.datetime)
    return Due(timezone=zone_name, at=localize(wall.replace(tzinfo=None), zone(zone_name)))
