"""What a listing asks for: filters, sort keys, pages, and the urgency score."""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from domain.due import EARLIEST_YEAR, LATEST_YEAR, localize, parse_moment, supported
from domain.errors import ValidationFailed, echo
from domain.model import Priority, Status, Task
from domain.text import check_text

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
    completed_before: dt.datetime | None = None
    completed_after: dt.datetime | None = None

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
                "sort", f"{echo(text)} is not a sort key", f"use one of {', '.join(SORT_FIELDS)}"
            )
        if direction not in ("", "asc", "desc"):
            raise ValidationFailed(
                "sort", f"{echo(text)} has direction {echo(direction)}", "use :asc or :desc"
            )
        descending = direction == "desc" if direction else name in _DESC_BY_DEFAULT
        return cls(name, descending)

    def __str__(self) -> str:
        return f"{self.field}:{'desc' if self.descending else 'asc'}"


# Without a direction, the most pressing comes first: highest priority, most urgent, latest update.
_DESC_BY_DEFAULT = frozenset({"priority", "urgency", "updated"})


def parse_sort(keys: list[str]) -> tuple[SortKey, ...]:
    if not keys:
        raise ValidationFailed("sort", "is empty", "give at least one key, e.g. ['due:asc']")
    if len(keys) > len(SORT_FIELDS):
        raise ValidationFailed(
            "sort", f"has {len(keys)} keys", f"give each key once: at most {len(SORT_FIELDS)}"
        )
    parsed = tuple(SortKey.parse(key) for key in keys)
    fields = [k.field for k in parsed]
    if len(set(fields)) != len(fields):
        raise ValidationFailed("sort", "names a key twice", "give each key once")
    return parsed


def moment_bound(
    raw: str | None,
    field_name: str,
    user_zone: ZoneInfo,
    fix: str = "write it as 2026-12-01 (the start of that day) or 2026-12-01T17:00:00+01:00",
) -> dt.datetime | None:
    """A bound as a user writes it: an ISO date (the start of that day in the user's zone) or
    date-time (without an offset, wall time in the user's zone); `fix` says how when it is
    neither."""
    if raw is None:
        return None
    text = check_text(raw, field_name).strip()
    if len(text) == 10:
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            pass
        else:
            supported(day, field_name, text)
            return localize(dt.datetime.combine(day, dt.time()), user_zone)
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValidationFailed(
            field_name, f"{echo(raw)} is not an ISO 8601 date or date-time", fix
        ) from None
    return parse_moment(text, user_zone, field_name)


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit", f"is {limit}", f"use 1 to {MAX_LIMIT}")
    return limit


def encode_cursor(kind: str, data: dict[str, Any]) -> str:
    raw = json.dumps({"k": kind, **data}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, fields: Mapping[str, type]) -> dict[str, Any]:
    """The fields of a cursor of `kind`: exactly `fields`, each of its type, or bad_cursor().

    Cursors are checked, not signed: each field is then held to its range (cursor_moment,
    cursor_number), so an edited cursor can only start a page where the user's own filters
    could, and needs no key shared by every replica and kept across restarts."""
    if len(cursor) > MAX_CURSOR:
        raise bad_cursor()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(data, dict) or data.pop("k") != kind:
            raise ValueError(kind)
    except (ValueError, KeyError, TypeError, RecursionError):
        raise bad_cursor() from None
    # type(), not isinstance(): True is not a whole number here
    if set(data) != set(fields) or any(type(data[k]) is not t for k, t in fields.items()):
        raise bad_cursor()
    return data


def cursor_moment(text: str) -> dt.datetime:
    """A moment a cursor carries: ISO 8601 with an offset, within the supported years."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise bad_cursor() from None
    if value.tzinfo is None or not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise bad_cursor()
    try:
        moment = value.astimezone(dt.UTC)
    except OverflowError:
        raise bad_cursor() from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise bad_cursor()
    return moment


def cursor_number(value: int, highest: int) -> int:
    """A whole number a cursor carries, from 0 to `highest`."""
    if not 0 <= value <= highest:
        raise bad_cursor()
    return value


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
            due_day = due.date or self._day(due.instant)
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

    def _day(self, moment: dt.datetime) -> dt.date:
        """The date of `moment` in the user's zone; a moment stored at the calendar's edge by an
        older version (where the zone's date does not exist) counts as the edge itself."""
        try:
            return moment.astimezone(self.zone).date()
        except OverflowError:
            return dt.date.max if moment > self.now else dt.date.min


def in_order(tasks: list[Task], order: tuple[SortKey, ...], outlook: Outlook) -> list[Task]:
    """`tasks` in the order `order` names, ties in creation order, undated tasks last by due
    whichever the direction: the order the SQL adapters give, urgency included."""
    ordered = sorted(tasks, key=lambda t: (t.created_at, t.id))
    for key in reversed(order):
        ordered.sort(key=lambda t, k=key: _sort_value(t, k, outlook), reverse=key.descending)  # type: ignore[misc]
        if key.field == "due":
            ordered.sort(key=lambda t: t.due is None)
    return ordered


def _sort_value(task: Task, key: SortKey, outlook: Outlook) -> Any:
    if key.field == "due":
        return task.due.instant if task.due else dt.datetime.max.replace(tzinfo=dt.UTC)
    if key.field == "priority":
        return task.priority.rank
    if key.field == "created":
        return task.created_at
    if key.field == "updated":
        return task.updated_at
    if key.field == "title":
        return task.title.lower()
    return outlook.urgency(task)
