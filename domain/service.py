"""Use cases: every change is one transaction that also writes its event to the outbox."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import json
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from domain.due import Due, localize, parse_due, parse_moment, zone
from domain.errors import (
    ConcurrentChange,
    Conflict,
    IdempotencyConflict,
    IdempotencyRace,
    InvalidTransition,
    NotFound,
    ValidationFailed,
)
from domain.events import EventType, TaskEvent
from domain.model import Priority, Status, Task, check_description, check_title, normalize_tags
from domain.phrases import due_from_phrase, looks_like_rrule, rrule_from_phrase
from domain.ports import Clock, IdempotencyRecord, Page, UnitOfWork, UnitOfWorkFactory
from domain.query import (
    Outlook,
    SortKey,
    StatusFilter,
    TaskFilter,
    bad_cursor,
    check_limit,
    decode_cursor,
    encode_cursor,
    parse_sort,
)
from domain.recurrence import (
    Recurrence,
    RecurrenceAnchor,
    next_occurrence,
    parse_recurrence,
    preview,
    series_text,
)
from domain.reminders import Reminder, parse_reminders

MAX_IDEMPOTENCY_KEY = 200
UPDATABLE_FIELDS = frozenset(
    {
        "title",
        "description",
        "due",
        "timezone",
        "priority",
        "tags",
        "reminders",
        "recurrence",
        "recurrence_anchor",
    }
)
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


@dataclass(frozen=True, slots=True)
class Added:
    task: Task
    created: bool


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


class TaskService:
    """The task use cases for any user; every call names the user it acts for."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        default_timezone: str = "UTC",
        source: str = "dueflow.api",
    ) -> None:
        self._uow = unit_of_work
        self._clock = clock
        self.default_timezone = default_timezone
        self.user_zone = zone(default_timezone, "DUEFLOW_TIMEZONE")
        self._source = source

    async def add(
        self,
        user_id: str,
        new: NewTask,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> Added:
        """Create a task; a repeated idempotency key answers the task it created first."""
        if idempotency_key is not None:
            _check_key(idempotency_key)
        try:
            return await self._add(user_id, new, idempotency_key, correlation_id)
        except IdempotencyRace:
            return await self._add(user_id, new, idempotency_key, correlation_id)

    async def _add(
        self, user_id: str, new: NewTask, key: str | None, correlation_id: str | None
    ) -> Added:
        now = self._clock.now()
        async with self._uow(inserts_only=key is None) as uow:
            if key is not None:
                seen = await uow.tasks.find_idempotency(user_id, key)
                if seen is not None:
                    if seen.request_hash != new.fingerprint():
                        raise IdempotencyConflict(
                            f"idempotency_key: {key!r} was already used with different arguments."
                            " Fix: use a new key for a new task, or repeat the first call exactly."
                        )
                    existing = await uow.tasks.get(user_id, seen.task_id)
                    if existing is None:
                        raise NotFound(f"The task created with idempotency_key {key!r} is gone.")
                    return Added(existing, created=False)
            task = self._build(user_id, new, now)
            await uow.tasks.add(task)
            if key is not None:
                record = IdempotencyRecord(new.fingerprint(), task.id)
                await uow.tasks.remember_idempotency(user_id, key, record, now)
            uow.record(self._created(task, now, correlation_id))
            await uow.commit()
            return Added(task, created=True)

    def _build(self, user_id: str, new: NewTask, now: dt.datetime) -> Task:
        title = check_title(new.title)
        description = check_description(new.description or "")
        zone_name = new.timezone or self.default_timezone
        if new.timezone is not None:
            zone(zone_name)
        if new.due is not None and not new.due.strip():
            raise ValidationFailed("due", "is empty", "give a date or date-time, or leave it out")
        due = self._read_due(new.due, zone_name) if new.due else None
        reminders = parse_reminders(new.reminders or [], due, zone_name)
        anchor = _anchor(new.recurrence_anchor)
        recurrence = None
        if new.recurrence is not None:
            recurrence = self._read_series(new.recurrence, due, anchor, str(uuid.uuid4()))
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

    async def update(
        self,
        user_id: str,
        task_id: str,
        patch: Mapping[str, Any],
        expected_version: int | None = None,
        correlation_id: str | None = None,
    ) -> Task:
        """Change the fields present in `patch`; None clears a field."""
        unknown = set(patch) - UPDATABLE_FIELDS
        if unknown:
            raise ValidationFailed(sorted(unknown)[0], "is not a field of a task", "leave it out")

        async def attempt() -> Task:
            now = self._clock.now()
            async with self._uow() as uow:
                task = await self._load(uow, user_id, task_id, expected_version)
                values = self._patched_values(task, patch)
                version = task.version
                changes = task.change(now, **values)
                if changes:
                    await uow.tasks.save(task, expected_version=version)
                    event = self._event(EventType.TASK_UPDATED, task, changes, now, correlation_id)
                    uow.record(event)
                    await uow.commit()
                return task

        return await _retrying(attempt, retry=expected_version is None)

    def _patched_values(self, task: Task, patch: Mapping[str, Any]) -> dict[str, Any]:
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

        current_zone = task.due.timezone if task.due else self.default_timezone
        zone_name = current_zone
        if "timezone" in patch:
            zone_name = patch["timezone"] or self.default_timezone
            zone(zone_name)
        due = task.due
        if "due" in patch:
            raw = patch["due"]
            due = self._read_due(raw, zone_name) if raw is not None else None
        elif due is not None and zone_name != due.timezone:
            due = _rezone(due, zone_name)
        values["due"] = due

        reminders = task.reminders
        if "reminders" in patch:
            reminders = parse_reminders(patch["reminders"] or [], due, zone_name)
        elif due is None and any(r.before is not None for r in reminders):
            raise ValidationFailed(
                "due",
                "cannot be cleared while relative reminders count back from it",
                "clear or replace reminders in the same call (reminders: null)",
            )
        values["reminders"] = reminders

        recurrence = task.recurrence
        anchor = (
            _anchor(patch.get("recurrence_anchor"))
            if "recurrence_anchor" in patch
            else (recurrence.anchor if recurrence else RecurrenceAnchor.SCHEDULE)
        )
        if "recurrence" in patch:
            raw_rule = patch["recurrence"]
            if raw_rule is None:
                recurrence = None
            else:
                series = recurrence.series_id if recurrence else str(uuid.uuid4())
                recurrence = self._read_series(raw_rule, due, anchor, series)
        elif recurrence is not None:
            if due is None:
                raise ValidationFailed(
                    "due",
                    "cannot be cleared on a recurring task",
                    "clear recurrence in the same call (recurrence: null), or move due instead",
                )
            if due != task.due:
                # moving the date re-anchors the series on it and keeps the rule and exdates
                recurrence = self._read_series(
                    series_text(recurrence), due, anchor, recurrence.series_id
                )
            elif anchor is not recurrence.anchor:
                recurrence = dataclasses.replace(recurrence, anchor=anchor)
        elif "recurrence_anchor" in patch and patch["recurrence_anchor"] is not None:
            raise ValidationFailed(
                "recurrence_anchor", "applies only to a recurring task", "set recurrence as well"
            )
        values["recurrence"] = recurrence
        return values

    async def complete(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_COMPLETED, correlation_id)

    async def reopen(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_REOPENED, correlation_id)

    async def delete(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_DELETED, correlation_id)

    async def restore(self, user_id: str, task_id: str, correlation_id: str | None = None) -> Task:
        return await self._transition(user_id, task_id, EventType.TASK_RESTORED, correlation_id)

    async def _transition(
        self, user_id: str, task_id: str, kind: EventType, correlation_id: str | None
    ) -> Task:

        async def attempt() -> Task:
            now = self._clock.now()
            async with self._uow() as uow:
                task = await self._load(uow, user_id, task_id, None)
                version = task.version
                step = {
                    EventType.TASK_COMPLETED: task.complete,
                    EventType.TASK_REOPENED: task.reopen,
                    EventType.TASK_DELETED: task.delete,
                    EventType.TASK_RESTORED: task.restore,
                }[kind]
                changes = step(now)
                if changes:
                    await uow.tasks.save(task, expected_version=version)
                    uow.record(self._event(kind, task, changes, now, correlation_id))
                    await uow.commit()
                return task

        return await _retrying(attempt, retry=True)

    async def recur(
        self,
        user_id: str,
        task_id: str,
        causation_id: str | None = None,
        source: str | None = None,
    ) -> Task | None:
        """Create the next occurrence of a completed recurring task, once: a repeated or late
        call finds the link already made (or the task reopened) and does nothing. `source` names
        the caller in the events when it is not this service's own (the recurrence worker)."""
        now = self._clock.now()
        async with self._uow() as uow:
            task = await uow.tasks.get(user_id, task_id)
            if (
                task is None
                or task.recurrence is None
                or task.due is None
                or task.status is not Status.COMPLETED
                or task.recurred_to is not None
                or task.series_ended
            ):
                return None
            following = next_occurrence(
                task.recurrence, task.due, task.occurrence, task.completed_at or now, now
            )
            version = task.version
            changes: dict[str, list[Any]] = {}
            created = None
            if following.due is None:
                task.series_ended = True
                changes["series_ended"] = [False, True]
            else:
                created = self._next_task(task, following.due, following.number, now)
                await uow.tasks.add(created)
                task.recurred_to = created.id
                changes["recurred_to"] = [None, created.id]
                uow.record(self._created(created, now, None, causation_id, source))
            if following.skipped:
                changes["skipped_occurrences"] = [None, [d.to_json() for d in following.skipped]]
            task.version += 1
            task.updated_at = now
            await uow.tasks.save(task, expected_version=version)
            uow.record(
                self._event(EventType.TASK_RECURRED, task, changes, now, None, causation_id, source)
            )
            await uow.commit()
            return created

    def _next_task(self, done: Task, due: Due, number: int, now: dt.datetime) -> Task:
        assert done.due is not None and done.recurrence is not None
        return Task(
            id=str(uuid.uuid4()),
            user_id=done.user_id,
            title=done.title,
            description=done.description,
            priority=done.priority,
            tags=done.tags,
            due=due,
            reminders=_shift_reminders(done.reminders, done.due, due),
            recurrence=done.recurrence,
            occurrence=number,
            recurred_from=done.id,
            created_at=now,
            updated_at=now,
        )

    async def skip_occurrence(
        self, user_id: str, task_id: str, correlation_id: str | None = None
    ) -> Task:
        """Move an open recurring task to its next occurrence without completing it."""

        async def attempt() -> Task:
            now = self._clock.now()
            async with self._uow() as uow:
                task = await self._load(uow, user_id, task_id, None)
                if task.recurrence is None or task.due is None:
                    raise ValidationFailed(
                        "task_id",
                        "is not a recurring task",
                        "use update_task to move its due, or set recurrence first",
                    )
                if task.status is not Status.OPEN:
                    raise InvalidTransition(
                        f"The task is {task.status}; only an open occurrence can be skipped."
                    )
                series = dataclasses.replace(task.recurrence, anchor=RecurrenceAnchor.SCHEDULE)
                following = next_occurrence(series, task.due, task.occurrence, now, now)
                if following.due is None:
                    raise InvalidTransition(
                        "The series has no later occurrence to skip to: complete or delete the"
                        " task, or extend its recurrence (COUNT/UNTIL)."
                    )
                version = task.version
                changes = task.change(
                    now,
                    due=following.due,
                    reminders=_shift_reminders(task.reminders, task.due, following.due),
                    occurrence=following.number,
                )
                await uow.tasks.save(task, expected_version=version)
                uow.record(self._event(EventType.TASK_UPDATED, task, changes, now, correlation_id))
                await uow.commit()
                return task

        return await _retrying(attempt, retry=True)

    def preview_recurrence(
        self, recurrence: str, due: str, timezone: str | None, count: int
    ) -> tuple[str, list[Due]]:
        """The rule `recurrence` resolves to and its first `count` occurrences from `due`."""
        if not 1 <= count <= 100:
            raise ValidationFailed("count", f"is {count}", "ask for 1 to 100 occurrences")
        zone_name = timezone or self.default_timezone
        zone(zone_name)
        start = self._read_due(due, zone_name)
        series = self._read_series(recurrence, start, RecurrenceAnchor.SCHEDULE, "preview")
        return series_text(series), preview(series_text(series), start, count)

    def _read_due(self, raw: str, zone_name: str) -> Due:
        """ISO 8601 first; anything else is read as an English phrase in the user's zone."""
        try:
            return parse_due(raw, zone_name, self.default_timezone)
        except ValidationFailed as iso_refusal:
            if raw.strip()[:1].isdigit() and not raw.strip().lower().startswith("in"):
                raise iso_refusal from None
            return due_from_phrase(raw, self._clock.now(), zone_name)

    def _read_series(
        self, raw: str, due: Due | None, anchor: RecurrenceAnchor, series_id: str
    ) -> Recurrence:
        if due is None:
            raise ValidationFailed(
                "recurrence", "needs a due date to anchor the series", "set due as well"
            )
        text = raw if looks_like_rrule(raw) else rrule_from_phrase(raw)
        rule, exdates = parse_recurrence(text, due)
        return Recurrence(rule, anchor, series_id, start=_wall(due), exdates=exdates)

    async def get(self, user_id: str, task_id: str) -> Task:
        async with self._uow(read_only=True) as uow:
            return await self._load(uow, user_id, task_id, None)

    def make_filter(self, args: ListArguments) -> TaskFilter:
        """Read the raw listing filters; dates without a time mean the start of that day."""
        if args.status not in STATUS_FILTERS:
            raise ValidationFailed(
                "status",
                f"{args.status!r} is not a status",
                f"use one of {', '.join(STATUS_FILTERS)}",
            )
        status: StatusFilter = args.status
        text = args.query.strip() if args.query else None
        if text is not None and len(text) > 200:
            raise ValidationFailed("query", "is longer than 200 characters", "search for less")
        return TaskFilter(
            status=status,
            priorities=tuple(Priority.parse(p) for p in args.priority or []),
            all_tags=normalize_tags(args.tags or []),
            any_tags=normalize_tags(args.any_tags or [], "any_tags"),
            due_before=self._bound(args.due_before, "due_before"),
            due_after=self._bound(args.due_after, "due_after"),
            overdue=args.overdue,
            text=text or None,
        )

    def _bound(self, raw: str | None, field: str) -> dt.datetime | None:
        if raw is None:
            return None
        text = raw.strip()
        if len(text) == 10:
            try:
                day = dt.date.fromisoformat(text)
            except ValueError:
                pass
            else:
                return localize(dt.datetime.combine(day, dt.time()), self.user_zone)
        return parse_moment(text, self.user_zone, field)

    async def list_tasks(
        self, user_id: str, where: TaskFilter, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """A page of tasks in creation order; follow next_cursor for the rest."""
        check_limit(limit)
        fingerprint = _fingerprint(where)
        after = None
        if cursor is not None:
            data = decode_cursor(cursor, "list")
            if data.get("f") != fingerprint:
                raise bad_cursor()
            after = (dt.datetime.fromisoformat(data["c"]), str(data["i"]))
        now = self._clock.now()
        today = now.astimezone(self.user_zone).date()
        async with self._uow(read_only=True) as uow:
            tasks = await uow.tasks.list_page(user_id, where, now, today, limit + 1, after)
        next_cursor = None
        if len(tasks) > limit:
            tasks = tasks[:limit]
            last = tasks[-1]
            next_cursor = encode_cursor(
                "list", {"c": last.created_at.isoformat(), "i": last.id, "f": fingerprint}
            )
        return Page(tasks, next_cursor, now)

    async def sort_tasks(
        self,
        user_id: str,
        where: TaskFilter,
        by: list[str],
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of tasks in the order `by` names; ties fall back to creation order."""
        check_limit(limit)
        order = parse_sort(by)
        fingerprint = _fingerprint(where, order)
        offset = 0
        if cursor is not None:
            data = decode_cursor(cursor, "sort")
            if data.get("f") != fingerprint or not isinstance(data.get("o"), int):
                raise bad_cursor()
            offset = data["o"]
        now = self._clock.now()
        today = now.astimezone(self.user_zone).date()
        async with self._uow(read_only=True) as uow:
            if any(key.field == "urgency" for key in order):
                everything = await uow.tasks.all_matching(user_id, where, now, today)
                ordered = self._sort_in_memory(everything, order, now)
                tasks = ordered[offset : offset + limit + 1]
            else:
                tasks = await uow.tasks.sorted_page(
                    user_id, where, now, today, order, offset, limit + 1
                )
        next_cursor = None
        if len(tasks) > limit:
            tasks = tasks[:limit]
            next_cursor = encode_cursor("sort", {"o": offset + limit, "f": fingerprint})
        return Page(tasks, next_cursor, now)

    def outlook(self) -> Outlook:
        """How the user's tasks stand now: overdue, urgency."""
        return Outlook.at(self._clock.now(), self.user_zone)

    def _sort_in_memory(
        self, tasks: list[Task], order: tuple[SortKey, ...], now: dt.datetime
    ) -> list[Task]:
        ordered = sorted(tasks, key=lambda t: (t.created_at, t.id))
        outlook = Outlook.at(now, self.user_zone)
        for key in reversed(order):
            ordered.sort(
                key=lambda t, k=key: _sort_value(t, k, outlook),  # type: ignore[misc]
                reverse=key.descending,
            )
            if key.field == "due":
                # undated tasks go last whichever the direction
                ordered.sort(key=lambda t: t.due is None)
        return ordered

    async def _load(
        self, uow: UnitOfWork, user_id: str, task_id: str, expected_version: int | None
    ) -> Task:
        task = await uow.tasks.get(user_id, task_id)
        if task is None:
            raise NotFound.task(task_id)
        if expected_version is not None and task.version != expected_version:
            raise Conflict(
                f"expected_version: the task is at version {task.version}, not"
                f" {expected_version}. Fix: get_task again, check the change still applies,"
                " and retry with the current version."
            )
        return task

    def _created(
        self,
        task: Task,
        now: dt.datetime,
        correlation_id: str | None,
        causation_id: str | None = None,
        source: str | None = None,
    ) -> TaskEvent:
        """The task.created event of a new task: every field set, as a change from nothing."""
        snapshot = task.snapshot()
        changes = {name: [None, value] for name, value in snapshot.items() if value}
        kind = EventType.TASK_CREATED
        return self._event(kind, task, changes, now, correlation_id, causation_id, source, snapshot)

    def _event(
        self,
        kind: EventType,
        task: Task,
        changes: dict[str, list[Any]],
        now: dt.datetime,
        correlation_id: str | None,
        causation_id: str | None = None,
        source: str | None = None,
        snapshot: dict[str, Any] | None = None,
    ) -> TaskEvent:
        return TaskEvent(
            event_type=kind,
            task_id=task.id,
            user_id=task.user_id,
            sequence=task.version,
            timestamp=now,
            task=task.snapshot() if snapshot is None else snapshot,
            changes=changes,
            source=source or self._source,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )


CONCURRENT_ATTEMPTS = 10


async def _retrying(attempt: Callable[[], Awaitable[Task]], retry: bool) -> Task:
    """Run a read-modify-write; a caller that named no version gets it re-applied on a race."""
    for n in range(CONCURRENT_ATTEMPTS - 1):
        try:
            return await attempt()
        except ConcurrentChange:
            if not retry:
                raise
            # jitter, so writers that collided do not collide again in lockstep
            await asyncio.sleep(random.uniform(0, 0.002 * (n + 1)))
    return await attempt()


def reminder_times(task: Task) -> list[tuple[Reminder, dt.datetime | None]]:
    """Each reminder with the UTC moment it fires."""
    return [(r, r.fire_at(task.due)) for r in task.reminders]


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


def _fingerprint(where: TaskFilter, order: tuple[SortKey, ...] = ()) -> str:
    raw = repr((where, [str(k) for k in order]))
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def _check_key(key: str) -> None:
    if not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise ValidationFailed(
            "idempotency_key",
            "is empty" if not key.strip() else f"has {len(key)} characters",
            f"use a unique string of 1 to {MAX_IDEMPOTENCY_KEY} characters, e.g. a UUID",
        )


def _anchor(raw: str | None) -> RecurrenceAnchor:
    if raw is None:
        return RecurrenceAnchor.SCHEDULE
    try:
        return RecurrenceAnchor(raw.strip().lower())
    except ValueError:
        raise ValidationFailed(
            "recurrence_anchor", f"{raw!r} is not an anchor", "use 'schedule' or 'completion'"
        ) from None


def _wall(due: Due) -> dt.datetime | dt.date:
    """The due as the series start: local wall time (naive), or the date of an all-day task."""
    local = due.local
    if isinstance(local, dt.datetime):
        return local.replace(tzinfo=None)
    return local


def _shift_reminders(reminders: tuple[Reminder, ...], old: Due, new: Due) -> tuple[Reminder, ...]:
    """Reminders for a moved occurrence: relative ones follow by themselves, absolute ones move
    by as much as the due did."""
    delta = new.instant - old.instant
    return tuple(Reminder(at=r.at + delta) if r.at is not None else r for r in reminders)


def _rezone(due: Due, zone_name: str) -> Due:
    """The same wall-clock due in another zone."""
    if due.date is not None:
        return Due(timezone=zone_name, date=due.date)
    wall = due.local
    assert isinstance(wall, dt.datetime)
    return Due(timezone=zone_name, at=localize(wall.replace(tzinfo=None), zone(zone_name)))


__all__ = ["Added", "ListArguments", "NewTask", "Status", "TaskService", "reminder_times"]
