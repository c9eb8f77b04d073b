"""The notifications worker: a triggered reminder becomes one pending delivery per channel.

The deliveries are written in the inbox transaction of the trigger, so a redelivered trigger
adds nothing; NotificationDispatcher (workers/notification_dispatch.py) delivers them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel

from domain.adapters.tables import NotificationDeliveryRow
from domain.events import TOPIC_REMINDERS, EventType
from domain.ports import Clock
from workers.consumer import Consumer, Outcome, Received, after_commit

log = logging.getLogger("dueflow.notifications")
DELIVERIES = SQLModel.metadata.tables[NotificationDeliveryRow.__tablename__]
CONSUMER_NAME = "notifications"

LOG, WEBHOOK, MCP = "log", "webhook", "mcp"
PENDING, DELIVERED, SKIPPED, DEAD = "pending", "delivered", "skipped", "dead"


@dataclass(frozen=True, slots=True)
class NotificationConfig:
    """Which channels each user gets and how deliveries are retried."""

    webhooks: Mapping[str, str] = field(default_factory=dict)  # user -> URL
    webhook_secret: str | None = None
    webhook_timeout_seconds: float = 5.0
    webhook_allow_private: bool = False
    mcp: bool = False  # only a process that serves MCP sessions can reach them
    max_attempts: int = 6
    retry_base_seconds: float = 10.0
    retry_cap_seconds: float = 3600.0
    poll_seconds: float = 5.0

    def channels_for(self, user_id: str) -> tuple[str, ...]:
        """The channels a reminder of `user_id` goes out on; `log` always."""
        channels = [LOG]
        if user_id in self.webhooks:
            channels.append(WEBHOOK)
        if self.mcp:
            channels.append(MCP)
        return tuple(channels)


def reminder_message(event: Received) -> dict[str, Any]:
    """What every channel says about one trigger: the task, the reminder, one line of text."""
    payload = event.envelope["payload"]
    task = payload.get("task")
    reminder = payload.get("reminder")
    if not isinstance(task, dict) or not isinstance(reminder, dict):
        raise ValueError("a REMINDER_TRIGGERED payload needs `task` and `reminder` objects")
    if not isinstance(reminder.get("reminder_id"), str):
        raise ValueError("the reminder has no reminder_id")
    summary = {
        key: task.get(key)
        for key in ("id", "title", "status", "priority", "due", "tags", "version")
    }
    return {
        "type": "reminder",
        "event_id": event.event_id,
        "user_id": event.user_id,
        "task": summary,
        "reminder": dict(reminder),
        "text": _text(summary, reminder),
    }


def _text(task: Mapping[str, Any], reminder: Mapping[str, Any]) -> str:
    due = task.get("due") or {}
    when = due.get("datetime") or due.get("date")
    tail = f" is due {when} ({due.get('timezone')})" if when else " has a reminder"
    late = " (late: the reminder was missed while Dueflow was down)" if reminder.get("late") else ""
    return f"Reminder: {task.get('title')!r}{tail}{late}"


def notifications_consumer(
    clock: Clock,
    config: NotificationConfig | None = None,
    wake: Callable[[], None] | None = None,
) -> Consumer:
    """The consumer of `reminders`; `wake` is called once its deliveries are committed."""
    config = config or NotificationConfig()

    async def on_reminder(event: Received, session: AsyncSession) -> Outcome:
        # `event.stale` is ignored on purpose: several triggers share one task version
        if event.event_type != EventType.REMINDER_TRIGGERED:
            return Outcome.SUCCESS
        try:
            message = reminder_message(event)
        except ValueError as exc:
            log.warning("DROP: trigger %s is malformed: %s", event.event_id, exc)
            return Outcome.DROP
        now = clock.now()
        rows = [
            {
                "event_id": event.event_id,
                "channel": channel,
                "user_id": event.user_id,
                "task_id": event.task_id,
                "reminder_id": message["reminder"]["reminder_id"],
                "message": message,
                "status": PENDING,
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for channel in config.channels_for(event.user_id)
        ]
        await session.execute(sa.insert(DELIVERIES), rows)
        if wake is not None:
            after_commit(session, wake)
        return Outcome.SUCCESS

    return Consumer(name=CONSUMER_NAME, handlers={TOPIC_REMINDERS: on_reminder})
