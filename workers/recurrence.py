"""The recurrence worker: the completion of a recurring task becomes its next occurrence."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.adapters.sql import JoinedUnitOfWork
from domain.events import TOPIC_TASK_EVENTS, EventType
from domain.ports import Clock
from domain.service import TaskService
from workers.consumer import Consumer, Outcome, Received


def recurrence_consumer(clock: Clock, default_timezone: str) -> Consumer:
    """The consumer; it creates the next occurrence in the same transaction as its inbox row."""

    async def on_task_event(event: Received, session: AsyncSession) -> Outcome:
        if event.event_type != EventType.TASK_COMPLETED:
            return Outcome.SUCCESS
        if not event.envelope["payload"]["task"].get("recurrence"):
            return Outcome.SUCCESS
        service = TaskService(
            lambda: JoinedUnitOfWork(session),
            clock,
            default_timezone=default_timezone,
            source="dueflow.recurrence",
        )
        # recur() reads the task as it is now: a completion already handled, or a task reopened
        # since, leaves nothing to do, so redelivery and complete-reopen-complete create one task
        await service.recur(event.user_id, event.task_id, causation_id=event.event_id)
        return Outcome.SUCCESS

    return Consumer(name="recurrence", handlers={TOPIC_TASK_EVENTS: on_task_event})
