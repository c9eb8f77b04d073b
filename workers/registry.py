"""Every worker by name: what `dueflow worker <name>` serves and the embedded host runs."""

from __future__ import annotations

from collections.abc import Callable

from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.unit_of_work import ReminderRepositoryFactory
from domain.clock import SystemClock
from domain.ports import Clock, JobScheduler
from workers.audit import audit_consumer
from workers.consumer import Consumer
from workers.notifications import NotificationConfig, notifications_consumer
from workers.realtime import Deliver, realtime_consumer
from workers.recurrence import RecurrenceInvoker, recurrence_consumer
from workers.reminders import reminders_consumer


def build_consumers(
    clock: Clock,
    default_timezone: str = "UTC",
    invoke: RecurrenceInvoker | None = None,
    *,
    jobs: JobScheduler | None = None,
    reminders_changed: Callable[[], None] | None = None,
    notifications: NotificationConfig | None = None,
    wake_dispatcher: Callable[[], None] | None = None,
    reminder_store: ReminderRepositoryFactory = SqlReminderRepository,
    realtime: Deliver | None = None,
    realtime_keep: int = 0,
) -> dict[str, Consumer]:
    """The workers of one process, sharing its clock; with `invoke` the recurrence worker creates
    the next occurrence through the task API (Dapr mode) instead of the use case; with `jobs` the
    reminders worker keeps a Dapr job per reminder and its schedule in `reminder_store` (the SQL
    table, or a Dapr state store); `reminders_changed` wakes an embedded timer.
    The notifications worker writes a delivery per channel of `notifications` and calls
    `wake_dispatcher` once they are committed. The realtime worker hands each change to
    `realtime` (the gateway's hub) once its feed row is committed."""
    consumers = (
        # first: in-process, consumers run one after another, and a live view waits for this one
        realtime_consumer(clock, default_timezone, realtime, realtime_keep),
        audit_consumer(clock),
        recurrence_consumer(clock, default_timezone, invoke),
        reminders_consumer(clock, jobs, reminders_changed, reminder_store),
        notifications_consumer(clock, notifications, wake_dispatcher),
    )
    return {consumer.name: consumer for consumer in consumers}


WORKER_NAMES: tuple[str, ...] = tuple(sorted(build_consumers(SystemClock())))
