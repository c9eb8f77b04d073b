"""The task aggregate and the rules on its fields."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.due import Due, iso_utc
from domain.errors import InvalidTransition, ValidationFailed, echo
from domain.recurrence import Recurrence
from domain.reminder_specs import Reminder
from domain.text import check_text

MAX_TITLE = 500
MAX_DESCRIPTION = 10_000
MAX_TAGS = 50
MAX_TAG = 64


class Status(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    DELETED = "deleted"


class Priority(StrEnum):
    """Priority names, each mapped to iCalendar PRIORITY (1 highest … 9 lowest, 0 undefined)."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    URGENT = "urgent"

    @property
    def ical(self) -> int:
        return _ICAL[self]

    @property
    def rank(self) -> int:
        """Order of importance: none 0 … urgent 4."""
        return _RANK[self]

    @classmethod
    def parse(cls, value: str, field_name: str = "priority") -> Priority:
        try:
            return cls(value.strip().lower())
        except ValueError:
            raise ValidationFailed(
                field_name,
                f"{echo(value)} is not a priority",
                f"use one of {', '.join(PRIORITIES)}",
            ) from None

    @classmethod
    def from_rank(cls, rank: int) -> Priority:
        return _BY_RANK[rank]


_ICAL = {
    Priority.NONE: 0,
    Priority.LOW: 9,
    Priority.MEDIUM: 5,
    Priority.HIGH: 3,
    Priority.URGENT: 1,
}
_RANK = {p: i for i, p in enumerate(Priority)}
_BY_RANK = {i: p for p, i in _RANK.items()}
PRIORITIES = tuple(p.value for p in Priority)


def check_task_id(task_id: str) -> str:
    """A task id as a tool received it, before it reaches a query."""
    return check_text(task_id, "task_id")


def check_title(value: str) -> str:
    title = check_text(value, "title").strip()
    if not title:
        raise ValidationFailed("title", "is empty", "give the task a short name")
    if len(title) > MAX_TITLE:
        raise ValidationFailed(
            "title",
            f"has {len(title)} characters",
            f"keep it to {MAX_TITLE} and put the rest in description",
        )
    return title


def check_description(value: str) -> str:
    check_text(value, "description")
    if len(value) > MAX_DESCRIPTION:
        raise ValidationFailed(
            "description", f"has {len(value)} characters", f"keep it to {MAX_DESCRIPTION}"
        )
    return value


def normalize_tags(values: Iterable[str], field_name: str = "tags") -> tuple[str, ...]:
    """Tags in lower case, trimmed, de-duplicated, in their first-seen order."""
    tags: dict[str, None] = {}
    for raw in values:
        tag = check_text(raw, field_name).strip().lower()
        if not tag:
            raise ValidationFailed(field_name, "contains an empty tag", "remove it")
        if len(tag) > MAX_TAG:
            raise ValidationFailed(
                field_name,
                f"tag {tag[:20]!r}… has {len(tag)} characters",
                f"keep tags to {MAX_TAG}",
            )
        tags[tag] = None
    if len(tags) > MAX_TAGS:
        raise ValidationFailed(field_name, f"has {len(tags)} tags", f"keep at most {MAX_TAGS}")
    return tuple(tags)


@dataclass(slots=True)
class Task:
    """One task of one user; `version` counts its changes and orders its events."""

    id: str
    user_id: str
    title: str
    created_at: dt.datetime
    updated_at: dt.datetime
    description: str = ""
    status: Status = Status.OPEN
    priority: Priority = Priority.NONE
    tags: tuple[str, ...] = ()
    due: Due | None = None
    reminders: tuple[Reminder, ...] = ()
    recurrence: Recurrence | None = None
    completed_at: dt.datetime | None = None
    deleted_at: dt.datetime | None = None
    version: int = 1
    occurrence: int = 1
    recurred_from: str | None = None  # the occurrence whose completion created this one
    recurred_to: str | None = None  # the occurrence created when this one was completed
    series_ended: bool = False  # completing this occurrence ended its series

    def change(self, now: dt.datetime, **values: Any) -> dict[str, list[Any]]:
        """Set fields; answer the field-level diff (old, new) as events carry it."""
        if self.status is Status.DELETED:
            raise InvalidTransition.deleted("change")
        before = self.snapshot()
        for name, value in values.items():
            setattr(self, name, value)
        return self._bump(before, now)

    def complete(self, now: dt.datetime) -> dict[str, list[Any]]:
        if self.status is Status.COMPLETED:
            return {}
        if self.status is Status.DELETED:
            raise InvalidTransition.deleted("complete")
        before = self.snapshot()
        self.status, self.completed_at = Status.COMPLETED, now
        return self._bump(before, now)

    def reopen(self, now: dt.datetime) -> dict[str, list[Any]]:
        if self.status is Status.OPEN:
            return {}
        if self.status is Status.DELETED:
            raise InvalidTransition.deleted("reopen")
        before = self.snapshot()
        self.status, self.completed_at = Status.OPEN, None
        return self._bump(before, now)

    def delete(self, now: dt.datetime) -> dict[str, list[Any]]:
        if self.status is Status.DELETED:
            return {}
        before = self.snapshot()
        self.status, self.deleted_at = Status.DELETED, now
        return self._bump(before, now)

    def restore(self, now: dt.datetime) -> dict[str, list[Any]]:
        """Undo a delete: the task returns to completed if it was, else open."""
        if self.status is not Status.DELETED:
            return {}
        before = self.snapshot()
        self.status = Status.COMPLETED if self.completed_at else Status.OPEN
        self.deleted_at = None
        return self._bump(before, now)

    def following(self, task_id: str, due: Due, number: int, now: dt.datetime) -> Task:
        """The next occurrence of this recurring task, due at `due`, as a new open task."""
        assert self.due is not None and self.recurrence is not None
        return Task(
            id=task_id,
            user_id=self.user_id,
            title=self.title,
            description=self.description,
            priority=self.priority,
            tags=self.tags,
            due=due,
            reminders=shift_reminders(self.reminders, self.due, due),
            recurrence=self.recurrence,
            occurrence=number,
            recurred_from=self.id,
            created_at=now,
            updated_at=now,
        )

    def recurred(
        self, next_id: str, now: dt.datetime, skipped: tuple[Due, ...] = ()
    ) -> dict[str, list[Any]]:
        """Link this completed occurrence to the next one, `next_id`."""
        changes: dict[str, list[Any]] = {"recurred_to": [self.recurred_to, next_id]}
        self.recurred_to = next_id
        return self._bookkept(changes, now, skipped)

    def end_series(self, now: dt.datetime, skipped: tuple[Due, ...] = ()) -> dict[str, list[Any]]:
        """Mark this completed occurrence as the last of its series."""
        changes: dict[str, list[Any]] = {"series_ended": [self.series_ended, True]}
        self.series_ended = True
        return self._bookkept(changes, now, skipped)

    def skip_to(self, due: Due, number: int, now: dt.datetime) -> dict[str, list[Any]]:
        """Move this open occurrence to occurrence `number`, due at `due`."""
        assert self.due is not None
        reminders = shift_reminders(self.reminders, self.due, due)
        return self.change(now, due=due, reminders=reminders, occurrence=number)

    def _bookkept(
        self, changes: dict[str, list[Any]], now: dt.datetime, skipped: tuple[Due, ...]
    ) -> dict[str, list[Any]]:
        # events name the bookkeeping fields themselves, not the recurrence block holding them
        if skipped:
            changes["skipped_occurrences"] = [None, [d.to_json() for d in skipped]]
        self.version += 1
        self.updated_at = now
        return changes

    def _bump(self, before: dict[str, Any], now: dt.datetime) -> dict[str, list[Any]]:
        after = self.snapshot()
        changes = {
            name: [before[name], after[name]]
            for name in after
            if before[name] != after[name] and name not in ("version", "updated_at")
        }
        if changes:
            self.version += 1
            self.updated_at = now
        return changes

    def is_overdue(self, now: dt.datetime, user_zone: Any, today: dt.date | None = None) -> bool:
        """Open and past due (`today`: the user's date now, when the caller has it already)."""
        return (
            self.status is Status.OPEN
            and self.due is not None
            and self.due.is_overdue(now, user_zone, today)
        )

    def snapshot(self) -> dict[str, Any]:
        """The full JSON state of the task, as events carry it."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "title": self.title,
            "description": self.description,
            "status": self.status.value,
            "priority": self.priority.value,
            "ical_priority": self.priority.ical,
            "tags": list(self.tags),
            "due": self.due.to_json() if self.due else None,
            "reminders": [r.spec for r in self.reminders],
            "recurrence": (
                {
                    "rule": self.recurrence.rule,
                    "anchor": self.recurrence.anchor.value,
                    "series_id": self.recurrence.series_id,
                    "occurrence": self.occurrence,
                    "start": _wall_text(self.recurrence.start),
                    "exdates": [_wall_text(day) for day in self.recurrence.exdates],
                    "recurred_from": self.recurred_from,
                    "recurred_to": self.recurred_to,
                    "series_ended": self.series_ended,
                }
                if self.recurrence
                else None
            ),
            "created_at": iso_utc(self.created_at),
            "updated_at": iso_utc(self.updated_at),
            "completed_at": iso_utc(self.completed_at) if self.completed_at else None,
            "deleted_at": iso_utc(self.deleted_at) if self.deleted_at else None,
            "version": self.version,
        }


def _wall_text(value: dt.datetime | dt.date | None) -> str | None:
    """A series start or exdate (local wall time, or a date) as ISO text."""
    return value.isoformat() if value is not None else None


def shift_reminders(reminders: tuple[Reminder, ...], old: Due, new: Due) -> tuple[Reminder, ...]:
    """Reminders for a moved occurrence: relative ones follow by themselves, absolute ones move
    by as much as the due did."""
    delta = new.instant - old.instant
    return tuple(Reminder(at=r.at + delta) if r.at is not None else r for r in reminders)
