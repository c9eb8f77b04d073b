"""The small interfaces the domain talks to the outside through."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self

from domain.calendar_links import CalendarLinks
from domain.events import TaskEvent
from domain.model import Task
from domain.query import SortKey, TaskFilter
from domain.reminder_schedule import ReminderState, ScheduledReminder


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """The current moment, aware, in UTC."""
        ...

    async def sleep_until(self, moment: dt.datetime, at_most: float) -> None:
        """Wait until the clock reads `moment`, at most `at_most` real seconds; it may return
        early, so the caller reads the clock again."""
        ...


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    request_hash: str
    task_id: str


@dataclass(frozen=True, slots=True)
class Page:
    tasks: list[Task]
    next_cursor: str | None
    now: dt.datetime  # the moment the listing was read at: its overdue and urgency are as of then


class TaskRepository(Protocol):
    async def add(self, task: Task) -> None: ...

    async def get(self, user_id: str, task_id: str) -> Task | None: ...

    async def save(self, task: Task, expected_version: int) -> None:
        """Store a changed task; raise ConcurrentChange unless it is at `expected_version`."""
        ...

    async def list_page(
        self,
        user_id: str,
        where: TaskFilter,
        now: dt.datetime,
        today: dt.date,
        limit: int,
        after: tuple[dt.datetime, str] | None,
    ) -> list[Task]:
        """Up to `limit` tasks in creation order, after the (created_at, id) key."""
        ...

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
        """Up to `limit` tasks ordered by `order` (no urgency), skipping `offset`."""
        ...

    async def all_matching(
        self, user_id: str, where: TaskFilter, now: dt.datetime, today: dt.date
    ) -> list[Task]: ...

    async def find_idempotency(self, user_id: str, key: str) -> IdempotencyRecord | None: ...

    async def remember_idempotency(
        self, user_id: str, key: str, record: IdempotencyRecord, now: dt.datetime
    ) -> None:
        """Claim `key`; raise IdempotencyRace when another transaction holds it already."""
        ...


class ReminderRepository(Protocol):
    """The reminder schedule: one row per reminder of a task at one moment."""

    @property
    def transactional(self) -> bool:
        """Whether writes commit and roll back with the unit of work (SQL), or are immediate
        (a Dapr state store, which cannot join the database transaction)."""
        ...

    async def get(self, reminder_id: str) -> ScheduledReminder | None: ...

    async def for_task(self, task_id: str) -> list[ScheduledReminder]: ...

    async def put(self, reminder: ScheduledReminder, now: dt.datetime) -> None:
        """Insert or replace the row of `reminder.id`."""
        ...

    async def put_many(self, reminders: Sequence[ScheduledReminder], now: dt.datetime) -> None:
        """put() each of `reminders` (distinct ids), in as few writes as the store allows."""
        ...

    async def transition(
        self, reminder: ScheduledReminder, expected: ReminderState, now: dt.datetime
    ) -> bool:
        """Store `reminder` only if its row is still in state `expected`; False if not."""
        ...

    async def due(self, now: dt.datetime, limit: int) -> list[ScheduledReminder]:
        """Pending reminders whose moment has come, earliest first."""
        ...

    async def next_moment(self) -> dt.datetime | None:
        """The earliest moment of any pending reminder."""
        ...

    async def upcoming(
        self, user_id: str, until: dt.datetime, limit: int
    ) -> list[ScheduledReminder]:
        """The user's pending reminders up to `until`, earliest first."""
        ...


class UnitOfWork(Protocol):
    """One transaction: state changes and their events commit together or not at all."""

    @property
    def tasks(self) -> TaskRepository: ...

    @property
    def reminders(self) -> ReminderRepository: ...

    @property
    def calendar(self) -> CalendarLinks: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def record(self, event: TaskEvent) -> None:
        """Queue an event for the outbox of this transaction."""
        ...

    async def commit(self) -> None: ...


class UnitOfWorkMisuse(RuntimeError):
    """Work a unit of work was opened not to do (a write in a read-only unit, a read in an
    inserts-only one): a programming error; open the unit the use case needs."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, read_only: bool = False, inserts_only: bool = False) -> UnitOfWork:
        """A new unit of work. `read_only` promises it will not write, so on a single-writer
        store it neither takes nor waits for the write lock. `inserts_only` promises it will
        only add rows (no reads, no updates), so a store may write them all at commit in one
        piece."""
        ...


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """One committed event on its way to one topic."""

    topic: str
    event_id: str
    event_type: str
    task_id: str
    data: dict[str, Any]
    traceparent: str | None = None  # the W3C trace context of its publish, when traced

    @property
    def metadata(self) -> dict[str, str]:
        """Dapr publish metadata: per-task ordering, the CloudEvent id and type, and its
        traceparent when the publish is traced."""
        metadata = {
            "partitionKey": self.task_id,
            "cloudevent.id": self.event_id,
            "cloudevent.type": f"dueflow.{self.event_type.lower()}.v1",
        }
        if self.traceparent is not None:
            metadata["cloudevent.traceparent"] = self.traceparent
        return metadata


class PublishFailed(Exception):
    """The bus did not take the message; the relay keeps the row and retries later."""


class EventPublisher(Protocol):
    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        """Hand `messages` to the bus, in order; raise PublishFailed if any was not taken."""
        ...


class JobScheduler(Protocol):
    """Exact-time wake-ups outside the process (Dapr Jobs): one job per pending reminder."""

    async def schedule(self, reminder: ScheduledReminder) -> None:
        """Create or overwrite the job named `reminder.id`, due at `reminder.fire_at`."""
        ...

    async def cancel(self, reminder_id: str) -> None:
        """Delete the job if it exists."""
        ...


class ViewFreshness(Protocol):
    """Read-your-writes for the views consumers build (the reminder schedule, the history)."""

    async def caught_up(self, user_id: str) -> None:
        """Return once the events `user_id` committed before this call have reached the views
        this process reads, as far as this process can bring that about."""
        ...


class EventuallyConsistent:
    """ViewFreshness where views are built elsewhere (Dapr mode) or at once (in memory):
    a read waits for nothing."""

    async def caught_up(self, user_id: str) -> None:
        return None


class OpenDues(Protocol):
    """When a user's open tasks fall due: what a schedule of passing time reads (indexed reads,
    never a scan of the user's tasks)."""

    async def next_due(self, user_id: str, at_or_after: dt.datetime) -> dt.datetime | None:
        """The earliest due moment (not an all-day date) at or after `at_or_after` among the
        user's open tasks; None when there is none."""
        ...

    async def fell_due(
        self,
        user_id: str,
        since: dt.datetime,
        until: dt.datetime,
        days: tuple[dt.date, dt.date],
        limit: int,
    ) -> list[str]:
        """The ids of the user's open tasks that became overdue between two looks, soonest due
        first, at most `limit`: a due moment in [since, until), or an all-day date in
        [days[0], days[1]) (the dates that ended as the user's day turned)."""
        ...
