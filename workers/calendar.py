"""The calendar consumer: keeps the feed render cache (domain.adapters.calendar_renders) as
tasks change, so a calendar feed after a change, or after a restart, renders nothing that did
not change. It runs in the process that publishes (embedded mode); it is not a Dapr worker of
its own: there, a feed request renders what changed and keeps it for every replica."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from domain.adapters.calendar_renders import live_forms, refresh
from domain.adapters.unit_of_work import JoinedUnitOfWork
from domain.events import TOPIC_TASK_EVENTS
from workers.consumer import Consumer, Outcome, Received

NAME = "calendar"


def calendar_consumer() -> Consumer:
    """The consumer that keeps each changed task's feed components."""

    async def on_task_event(event: Received, session: AsyncSession) -> Outcome:
        """Render the task as it now stands (a stale event finds it as a later one left it);
        for a user without a live feed, one read and nothing written."""
        connection = await session.connection()
        forms = await live_forms(connection, event.user_id)
        if not forms:
            return Outcome.SUCCESS  # what is kept of an earlier feed no longer matches anyway
        async with JoinedUnitOfWork(session, read_only=True) as unit:
            task = await unit.tasks.get(event.user_id, event.task_id)
        await refresh(connection, task, event.user_id, event.task_id, forms)
        return Outcome.SUCCESS

    return Consumer(name=NAME, handlers={TOPIC_TASK_EVENTS: on_task_event})
