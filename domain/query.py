"""What a listing asks for: filters, sort keys, pages, and the urgency score."""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.errors import ValidationFailed
from domain.model import Priority, Status, Task

StatusFilter = Literal["open", "completed", "deleted", "all"]
SortField = Literal["due", "priority", "created", "updated", "title", "urgency"]
SORT_FIELDS: tuple[str, ...] = ("due", "priority", "created", "updated", "title", "urgency")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_CURSOR = 1000


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which of a user's tasks a listing covers; every condition must hold."""

    status: StatusFilter = "open"
    priorities: tuple[Priority, ...] = ()
    all_tags: tuple[str, ...] = ()
    any_tags: tuple[str, ...] = ()
    due_before: dt.datetime | None = None
    due_after: dt.datetime | None = None
    overdue: bool | None = None
    text: str | None = None

    def statuses(self) -> tuple[Status, ...]:
        if self.status == "all":
            return tuple(Status)
        return (Status(self.status),)


@dataclass(frozen=True, slots=True)
class SortKey:
    field: str
    descending: bool

    @classmethod
    def parse(cls, text: str) -> SortKey:
        name, _, direction = text.strip().lower().partition(":")
        if name not in SORT_FIELDS:
            raise ValidationFailed(
                "by", f"{text!r} is not a sort key", f"use one of {', '.join(SORT_FIELDS)}"
            )
        if direction not in ("", "asc", "desc"):
            raise ValidationFailed(
                "by", f"{text!r} has direction {direction!r}", "use :asc or :desc"
            )
        descending = direction == "desc" if direction else name in _DESC_BY_DEFAULT
        return cls(name, descending)

    def __str__(self) -> str:
        return f"{self.field}:{'desc' if self.descending else 'asc'}"


# Without a direction, the most pressing comes first: highest priority, most urgent, latest update.
_DESC_BY_DEFAULT = frozenset({"priority", "urgency", "updated"})


def parse_sort(keys: list[str]) -> tuple[SortKey, ...]:
    if not keys:
        raise ValidationFailed("by", "is empty", "give at least one key, e.g. ['due:asc']")
    parsed = tuple(SortKey.parse(key) for key in keys)
    fields = [k.field for k in parsed]
    if len(set(fields)) != len(fields):
        raise ValidationFailed("by", "names a key twice", "give each key once")
    return parsed


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit", f"is {limit}", f"use 1 to {MAX_LIMIT}")
    return limit


def encode_cursor(kind: str, data: dict[str, Any]) -> str:
    raw = json.dumps({"k": kind, **data}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str) -> dict[str, Any]:
    if len(cursor) > MAX_CURSOR:
        raise bad_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.pop("k") != kind:
            raise ValueError(kind)
        return data
    except (ValueError, KeyError, TypeError, RecursionError):
        raise bad_cursor() from None


def bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        "cursor",
        "is not a cursor this listing issued",
        "pass next_cursor from the previous page unchanged, with the same filters and sort",
    )


URGENCY_PRIORITY = {
    Priority.NONE: 0.0,
    Priority.LOW: 2.0,
    Priority.MEDIUM: 4.0,
    Priority.HIGH: 6.0,
    Priority.URGENT: 8.0,
}


def urgency(task: Task, now: dt.datetime, user_zone: ZoneInfo) -> float:
    """How pressing an open task is (0 for the others); see Outlook.urgency."""
    return Outlook.at(now, user_zone).urgency(task)


@dataclass(frozen=True, slots=True)
class Outlook:
    """How tasks stand at one moment in the user's zone: what is overdue, what is pressing.
    A listing asks this of every task it shows, so the day is worked out once."""

    now: dt.datetime
    zone: ZoneInfo
    today: dt.date

    @classmethod
    def at(cls, now: dt.datetime, user_zone: ZoneInfo) -> Outlook:
        return cls(now, user_zone, now.astimezone(user_zone).date())

    def overdue(self, task: Task) -> bool:
        """Open and past due."""
        return task.is_overdue(self.now, self.zone, self.today)

    def urgency(self, task: Task) -> float:
        """How pressing an open task is (0 for the others).

        Priority weight (none 0, low 2, medium 4, high 6, urgent 8)
        + due: overdue 10 plus 0.5 a day late up to 7 days; due today 8; due in d days (1-7)
          8 - d; due later 0.5; no due 0
        + age: 1 a month since creation, up to 2.
        """
        if task.status is not Status.OPEN:
            return 0.0
        score = URGENCY_PRIORITY[task.priority]
        due = task.due
        if due is not None:
            due_day = due.date or due.instant.astimezone(self.zone).date()
            days = (due_day - self.today).days
            if self.overdue(task):
                score += 10.0 + 0.5 * min(max(-days, 0), 7)
            elif days <= 0:
                score += 8.0
            elif days <= 7:
                score += 8.0 - days
            else:
                score += 0.5
        age_days = (self.now - task.created_at).total_seconds() / 86400
        score += min(max(age_days, 0.0) / 30.0, 2.0)
        return round(score, 4)
