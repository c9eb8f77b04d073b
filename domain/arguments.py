"""Raw tool arguments read into validated domain values, before any unit of work opens.

English phrases and RRULEs are read here, never under a database lock: on SQLite a writing
unit of work holds the write lock from its first statement to its commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from domain.due import Due, parse_due, zone
from domain.errors import ValidationFailed, echo
from domain.model import Priority, Task, check_description, check_title, normalize_tags
from domain.phrases import due_from_phrase, looks_like_rrule, rrule_from_phrase
from domain.ports import Clock
from domain.query import StatusFilter, TaskFilter, moment_bound
from domain.recurrence import (
    Recurrence,
    RecurrenceAnchor,
    parse_recurrence,
    preview,
    series_start,
    series_text,
)
from domain.reminder_specs import parse_reminders
from domain.text import check_text

MAX_IDEMPOTENCY_KEY = 200
MAX_QUERY = 200
STATUS_FILTERS: tuple[StatusFilter, ...] = ("open", "completed", "deleted", "all")


@dataclass(frozen=True, kw_only=True)
class NewTask:
    """The raw arguments of add_task, before the domain reads them."""

    title: str
    description: str | None = None
    due: str | None = None
    timezone: str | None = None
    priority: str | None = None
    tags: list[str] | None = None
    reminders: list[str] | None = None
    recurrence: str | None = None
    recurrence_anchor: str | None = None

    def fingerprint(self) -> str:
        raw = json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


# What update_task may change: every argument of a new task, in the order the tools list them.
UPDATABLE_FIELDS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(NewTask))


@dataclass(frozen=True, kw_only=True)
class ListArguments:
    """The raw filters shared by list_tasks and sort_tasks."""

    status: str = "open"
    priority: list[str] | None = None
    tags: list[str] | None = None
    any_tags: list[str] | None = None
    due_before: str | None = None
    due_after: str | None = None
    overdue: bool | None = None
    query: str | None = None
    completed_before: str | None = None
    completed_after: str | None = None


class ArgumentReader:
    """Reads raw arguments in the user's zone; phrases ('tomorrow 5pm') are read at the clock's
    now."""

    def __init__(self, clock: Clock, default_timezone: str) -> None:
        self._clock = clock
        self.default_timezone = default_timezone
        self.user_zone: ZoneInfo = zone(default_timezone, "DUEFLOW_TIMEZONE")

    def new_task(self, user_id: str, new: NewTask, now: dt.datetime) -> Task:
        """The task `new` describes, created at `now` with a fresh id."""
        title = check_title(new.title)
        description = check_description(new.description or "")
        zone_name = new.timezone or self.default_timezone
        if new.timezone is not None:
            zone(zone_name)
        if new.due is not None and not new.due.strip():
            raise ValidationFailed("due", "is empty", "give a date or date-time, or leave it out")
        due = self.due(new.due, zone_name) if new.due else None
        reminders = parse_reminders(new.reminders or [], due, zone_name)
        anchor = read_anchor(new.recurrence_anchor)
        recurrence = None
        if new.recurrence is not None:
            recurrence = self.series(new.recurrence, due, anchor, str(uuid.uuid4()))
        return Task(
            id=str(uuid.uuid4()),
            user_id=user_id,
            title=title,
            description=description,
            priority=Priority.parse(new.priority) if new.priority else Priority.NONE,
            tags=normalize_tags(new.tags or []),
            due=due,
            reminders=reminders,
            recurrence=recurrence,
            created_at=now,
            updated_at=now,
        )

    def due(self, raw: str, zone_name: str) -> Due:
        """ISO 8601 first; anything else is read as an English phrase in the user's zone."""
        try:
            return parse_due(raw, zone_name, self.default_timezone)
        except ValidationFailed as iso_refusal:
            if raw.strip()[:1].isdigit() and not raw.strip().lower().startswith("in"):
                raise iso_refusal from None
            return due_from_phrase(raw, self._clock.now(), zone_name)

    def series(
        self, raw: str, due: Due | None, anchor: RecurrenceAnchor, series_id: str
    ) -> Recurrence:
        """The series an RRULE (or a phrase such as 'every weekday') describes, from `due`."""
        if due is None:
            raise ValidationFailed(
                "recurrence", "needs a due date to anchor the series", "set due as well"
            )
        text = raw if looks_like_rrule(raw) else rrule_from_phrase(raw)
        rule, exdates = parse_recurrence(text, due)
        return Recurrence(rule, anchor, series_id, start=series_start(due), exdates=exdates)

    def preview(
        self, recurrence: str, due: str, timezone: str | None, count: int
    ) -> tuple[str, list[Due]]:
        """The rule `recurrence` resolves to and its first `count` occurrences from `due`."""
        if not 1 <= count <= 100:
            raise ValidationFailed("count", f"is {count}", "ask for 1 to 100 occurrences")
        zone_name = timezone or self.default_timezone
        zone(zone_name)
        start = self.due(due, zone_name)
        series = self.series(recurrence, start, RecurrenceAnchor.SCHEDULE, "preview")
        return series_text(series), preview(series_text(series), start, count)

    def task_filter(self, args: ListArguments) -> TaskFilter:
        """The listing filters; dates without a time mean the start of that day."""
        if args.status not in STATUS_FILTERS:
            raise ValidationFailed(
                "status",
                f"{echo(args.status)} is not a status",
                f"use one of {', '.join(STATUS_FILTERS)}",
            )
        status: StatusFilter = args.status
        text = check_text(args.query, "query").strip() if args.query else None
        if text is not None and len(text) > MAX_QUERY:
            raise ValidationFailed(
                "query", f"is longer than {MAX_QUERY} characters", "search for less"
            )
        return TaskFilter(
            status=status,
            priorities=priorities(args.priority or []),
            all_tags=normalize_tags(args.tags or []),
            any_tags=normalize_tags(args.any_tags or [], "any_tags"),
            due_before=moment_bound(args.due_before, "due_before", self.user_zone),
            due_after=moment_bound(args.due_after, "due_after", self.user_zone),
            overdue=args.overdue,
            text=text or None,
            completed_before=moment_bound(
                args.completed_before, "completed_before", self.user_zone
            ),
            completed_after=moment_bound(args.completed_after, "completed_after", self.user_zone),
        )


def check_idempotency_key(key: str) -> None:
    check_text(key, "idempotency_key")
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "idempotency_key",
            "is empty" if not key.strip() else f"has {len(key)} characters",
            f"use a unique string of 1 to {MAX_IDEMPOTENCY_KEY} characters, e.g. a UUID",
        )


def check_patch_fields(names: Iterable[str]) -> None:
    unknown = set(names) - set(UPDATABLE_FIELDS)
    if unknown:
        raise ValidationFailed(sorted(unknown)[0], "is not a field of a task", "leave it out")


def read_anchor(raw: str | None) -> RecurrenceAnchor:
    if raw is None:
        return RecurrenceAnchor.SCHEDULE
    try:
        return RecurrenceAnchor(raw.strip().lower())
    except ValueError:
        raise ValidationFailed(
            "recurrence_anchor", f"{echo(raw)} is not an anchor", "use 'schedule' or 'completion'"
        ) from None


def priorities(values: list[str]) -> tuple[Priority, ...]:
    """The priorities a listing filters on, each named once."""
    if len(values) > len(Priority):
        raise ValidationFailed(
            "priority",
            f"has {len(values)} entries",
            f"name each priority once: at most {len(Priority)}",
        )
    return tuple(Priority.parse(value) for value in values)
