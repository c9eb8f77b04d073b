"""The storage ports in memory: a unit of work and repositories with the SQL adapters' semantics.

For fast use-case tests and simulations. A unit of work stages its writes and events and
applies them at commit, all or nothing; leaving without commit drops them. A task saved at a
version someone else has moved past raises ConcurrentChange, at the save or at the commit.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self
from zoneinfo import ZoneInfo

from domain.calendar_links import CalendarLink, CalendarState, FeedRow
from domain.errors import ConcurrentChange, IdempotencyRace
from domain.events import TaskEvent
from domain.model import Status, Task
from domain.ports import IdempotencyRecord, UnitOfWorkMisuse
from domain.query import Outlook, SortKey, TaskFilter, in_order
from domain.reminder_schedule import ReminderState, ScheduledReminder


@dataclass
class MemoryStore:
    """What every unit of work over it shares, and a UnitOfWorkFactory for them."""

    tasks: dict[str, Task] = field(default_factory=dict)
    idempotency: dict[tuple[str, str], IdempotencyRecord] = field(default_factory=dict)
    reminders: dict[str, ScheduledReminder] = field(default_factory=dict)
    calendar: dict[tuple[str, str], CalendarLink] = field(default_factory=dict)
    events: list[TaskEvent] = field(default_factory=list)  # committed, in commit order

    def __call__(self, *, read_only: bool = False, inserts_only: bool = False) -> MemoryUnitOfWork:
        return MemoryUnitOfWork(self, read_only=read_only, inserts_only=inserts_only)


class MemoryUnitOfWork:
    """One transaction over a MemoryStore. It holds the promises it was opened with: a
    read-only unit refuses writes and a commit, an inserts-only unit refuses reads and updates
    (RuntimeError), so a use case that breaks its promise fails here as it would in SQL."""

    def __init__(self, store: MemoryStore, *, read_only: bool, inserts_only: bool) -> None:
        self.store = store
        self.read_only = read_only
        self.inserts_only = inserts_only
        self.tasks = MemoryTaskRepository(self)
        self.reminders = MemoryReminderRepository(self)
        self.calendar = MemoryCalendarLinks(self)
        self._events: list[TaskEvent] = []
        self.staged_tasks: dict[str, Task] = {}
        self.expected_versions: dict[str, int] = {}  # task id -> the stored version it replaces
        self.staged_keys: dict[tuple[str, str], IdempotencyRecord] = {}
        self.staged_reminders: dict[str, ScheduledReminder] = {}
        self.staged_links: dict[tuple[str, str], CalendarLink] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._discard()

    def record(self, event: TaskEvent) -> None:
        self.check_writable()
        self._events.append(event)

    async def commit(self) -> None:
        if self.read_only:
            raise UnitOfWorkMisuse("commit() in a read-only unit of work")
        store = self.store
        for task_id, version in self.expected_versions.items():
            if store.tasks[task_id].version != version:
                raise ConcurrentChange()
        if any(key in store.idempotency for key in self.staged_keys):
            raise IdempotencyRace()
        store.tasks.update(self.staged_tasks)
        store.idempotency.update(self.staged_keys)
        store.reminders.update(self.staged_reminders)
        store.calendar.update(self.staged_links)
        store.events.extend(self._events)
        self._discard()

    def check_writable(self) -> None:
        if self.read_only:
            raise UnitOfWorkMisuse("a write in a read-only unit of work")

    def check_readable(self) -> None:
        if self.inserts_only:
            raise UnitOfWorkMisuse("a read or update in an inserts-only unit of work")

    def _discard(self) -> None:
        self._events = []
        self.staged_tasks, self.expected_versions = {}, {}
        self.staged_keys, self.staged_reminders = {}, {}
        self.staged_links = {}


class MemoryTaskRepository:
    """Tasks as the unit of work sees them: the store, overlaid with its own staged writes.
    Tasks are handed out as copies, so a change reaches the store only through save()."""

    def __init__(self, unit: MemoryUnitOfWork) -> None:
        self._unit = unit

    async def add(self, task: Task) -> None:
        self._unit.check_writable()
        self._unit.staged_tasks[task.id] = dataclasses.replace(task)

    async def get(self, user_id: str, task_id: str) -> Task | None:
        self._unit.check_readable()
        task = self._current(task_id)
        if task is None or task.user_id != user_id:
            return None
        return dataclasses.replace(task)

    async def save(self, task: Task, expected_version: int) -> None:
        unit = self._unit
        unit.check_writable()
        unit.check_readable()
        current = self._current(task.id)
        if current is None or current.user_id != task.user_id:
            raise ConcurrentChange()
        if current.version != expected_version:
            raise ConcurrentChange()
        if task.id in unit.store.tasks:
            unit.expected_versions.setdefault(task.id, unit.store.tasks[task.id].version)
        unit.staged_tasks[task.id] = dataclasses.replace(task)

    async def list_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        limit: int,
        after: tuple[dt.datetime, str] | None,
    ) -> list[Task]:
        found = await self.all_matching(user_id, where, now, today)
        if after is not None:
            found = [t for t in found if (t.created_at, t.id) > after]
        return found[:limit]

    async def sorted_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        order: tuple[SortKey, ...],
        offset: int,
        limit: int,
    ) -> list[Task]:
        found = await self.all_matching(user_id, where, now, today)
        # the port leaves urgency out of `order`, so the outlook's zone is never consulted
        outlook = Outlook(now, ZoneInfo("UTC"), today)
        return in_order(found, order, outlook)[offset : offset + limit]

    async def all_matching(
        self, user_id: str, where: TaskFilter, now: dt.datetime, today: dt.date
    ) -> list[Task]:
        """The user's tasks that `where` covers, in creation order."""
        self._unit.check_readable()
        visible = {**self._unit.store.tasks, **self._unit.staged_tasks}.values()
        found = [
            dataclasses.replace(t)
            for t in visible
            if t.user_id == user_id and matches(t, where, now, today)
        ]
        return sorted(found, key=lambda t: (t.created_at, t.id))

    async def find_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None:
        self._unit.check_readable()
        return self._unit.staged_keys.get((user_id, key)) or self._unit.store.idempotency.get(
            (user_id, key)
        )

    async def remember_idempotency(
        self, user_id: str, key: str, record: IdempotencyRecord, now: dt.datetime
    ) -> None:
        unit = self._unit
        unit.check_writable()
        if (user_id, key) in unit.store.idempotency or (user_id, key) in unit.staged_keys:
            raise IdempotencyRace()
        unit.staged_keys[(user_id, key)] = record

    def _current(self, task_id: str) -> Task | None:
        return self._unit.staged_tasks.get(task_id) or self._unit.store.tasks.get(task_id)


def matches(task: Task, where: TaskFilter, now: dt.datetime, today: dt.date) -> bool:
    """Whether `where` covers `task`, as the SQL adapters' WHERE clause decides it."""
    due = task.due
    if task.status not in where.statuses():
        return False
    if where.priorities and task.priority not in where.priorities:
        return False
    if not all(tag in task.tags for tag in where.all_tags):
        return False
    if where.any_tags and not any(tag in task.tags for tag in where.any_tags):
        return False
    if where.due_before is not None and (due is None or due.instant >= where.due_before):
        return False
    if where.due_after is not None and (due is None or due.instant < where.due_after):
        return False
    if where.overdue is not None and _overdue(task, now, today) != where.overdue:
        return False
    done = task.completed_at
    if where.completed_before is not None and (done is None or done >= where.completed_before):
        return False
    if where.completed_after is not None and (done is None or done < where.completed_after):
        return False
    if where.text:
        needle = where.text.lower()
        return needle in task.title.lower() or needle in task.description.lower()
    return True


def _overdue(task: Task, now: dt.datetime, today: dt.date) -> bool:
    due = task.due
    if task.status is not Status.OPEN or due is None:
        return False
    if due.date is not None:
        return due.date < today
    return due.instant < now


class MemoryReminderRepository:
    """The reminder schedule; its writes commit and roll back with the unit of work."""

    def __init__(self, unit: MemoryUnitOfWork) -> None:
        self._unit = unit

    @property
    def transactional(self) -> bool:
        return True

    async def get(self, reminder_id: str) -> ScheduledReminder | None:
        return self._visible().get(reminder_id)

    async def for_task(self, task_id: str) -> list[ScheduledReminder]:
        found = [r for r in self._visible().values() if r.task_id == task_id]
        return sorted(found, key=lambda r: r.id)

    async def put(self, reminder: ScheduledReminder, now: dt.datetime) -> None:
        self._unit.check_writable()
        self._unit.staged_reminders[reminder.id] = reminder

    async def put_many(self, reminders: Sequence[ScheduledReminder], now: dt.datetime) -> None:
        self._unit.check_writable()
        self._unit.staged_reminders.update((reminder.id, reminder) for reminder in reminders)

    async def transition(
        self, reminder: ScheduledReminder, expected: ReminderState, now: dt.datetime
    ) -> bool:
        current = self._visible().get(reminder.id)
        if current is None or current.state is not expected:
            return False
        await self.put(reminder, now)
        return True

    async def due(self, now: dt.datetime, limit: int) -> list[ScheduledReminder]:
        return self._pending(lambda r: r.fire_at <= now)[:limit]

    async def next_moment(self) -> dt.datetime | None:
        pending = self._pending(lambda r: True)
        return pending[0].fire_at if pending else None

    async def upcoming(
        self, user_id: str, until: dt.datetime, limit: int
    ) -> list[ScheduledReminder]:
        return self._pending(lambda r: r.user_id == user_id and r.fire_at <= until)[:limit]

    def _pending(self, keep: Callable[[ScheduledReminder], bool]) -> list[ScheduledReminder]:
        found = [
            r for r in self._visible().values() if r.state is ReminderState.PENDING and keep(r)
        ]
        return sorted(found, key=lambda r: (r.fire_at, r.id))

    def _visible(self) -> dict[str, ScheduledReminder]:
        self._unit.check_readable()
        return {**self._unit.store.reminders, **self._unit.staged_reminders}


class MemoryCalendarLinks:
    """The UIDs imported per user, staged until the unit commits."""

    def __init__(self, unit: MemoryUnitOfWork) -> None:
        self._unit = unit

    async def links(self, user_id: str) -> list[CalendarLink]:
        self._unit.check_readable()
        found = {**self._unit.store.calendar, **self._unit.staged_links}
        return [link for (user, _uid), link in found.items() if user == user_id]

    async def find(self, user_id: str, uid: str) -> CalendarLink | None:
        self._unit.check_readable()
        key = (user_id, uid)
        return self._unit.staged_links.get(key) or self._unit.store.calendar.get(key)

    async def state(self, user_id: str) -> CalendarState:
        self._unit.check_readable()
        tasks = [t for t in self._unit.store.tasks.values() if t.user_id == user_id]
        links = await self.links(user_id)
        moments = [link.last_modified for link in links if link.last_modified is not None]
        return CalendarState(
            len(tasks),
            sum(t.version for t in tasks),
            max((t.updated_at for t in tasks), default=None),
            (
                len(links),
                sum(link.sequence for link in links),
                sum(link.task_version for link in links),
                max(moments, default=None),
            ),
        )

    async def feed_rows(self, user_id: str) -> list[FeedRow]:
        self._unit.check_readable()
        return [
            FeedRow(t.id, t.version, t.created_at, t.updated_at, t.recurred_to)
            for t in self._unit.store.tasks.values()
            if t.user_id == user_id and t.status is Status.OPEN and t.due is not None
        ]

    async def put(self, user_id: str, link: CalendarLink) -> None:
        self._unit.check_writable()
        self._unit.staged_links[(user_id, link.uid)] = link


@dataclass(frozen=True, slots=True)
class MemoryOpenDues:
    """OpenDues over a MemoryStore's committed tasks, with the SQL adapter's semantics."""

    store: MemoryStore

    def _open(self, user_id: str) -> list[Task]:
        return [
            t
            for t in self.store.tasks.values()
            if t.user_id == user_id and t.status is Status.OPEN and t.due is not None
        ]

    async def next_due(self, user_id: str, at_or_after: dt.datetime) -> dt.datetime | None:
        moments = [
            t.due.instant
            for t in self._open(user_id)
            if t.due is not None and t.due.date is None and t.due.instant >= at_or_after
        ]
        return min(moments, default=None)

    async def fell_due(
        self,
        user_id: str,
        since: dt.datetime,
        until: dt.datetime,
        days: tuple[dt.date, dt.date],
        limit: int,
    ) -> list[str]:
        first, last = days
        fell = [
            t
            for t in self._open(user_id)
            if t.due is not None
            and (
                first <= t.due.date < last
                if t.due.date is not None
                else since <= t.due.instant < until
            )
        ]
        fell.sort(key=lambda t: (t.due.instant if t.due else until, t.id))
        return [t.id for t in fell[:limit]]
