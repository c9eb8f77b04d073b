"""The calendar consumer: keeps the feed render cache (domain.adapters.calendar_renders) as
tasks change, so a calendar feed after a change, or after a restart, renders nothing that did
not change. It runs in the process that publishes (embedded mode); it is not a Dapr worker of
its own: there, a feed request renders what changed and keeps it for every replica."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from domain.adapters.calendar_renders import live_forms, refresh
from domain.adapters.unit_of_work import JoinedUnitOfWork
from domain.events import TOPIC_TASK_EVENTS
from workers.consumer import Consumer, Outcome, Received

NAME = "calendar"


def calendar_consumer() -> Consumer:
    """The consumer that keeps each changed task's feed components."""

    async def on_task_events(events: Sequence[Received], session: AsyncSession) -> Outcome:
        """Render each changed task as it now stands, once however many of its events the batch
        holds (a stale event finds it as a later one left it); for a batch whose users have no
        live feed, one read and nothing written."""
        connection = await session.connection()
        forms = await live_forms(connection, [event.user_id for event in events])
        changed = {(e.user_id, e.task_id): None for e in events if e.user_id in forms}
        if not changed:
            return Outcome.SUCCESS  # what is kept of an earlier feed no longer matches anyway
        async with JoinedUnitOfWork(session, read_only=True) as unit:
            for user_id, task_id in changed:
                task = await unit.tasks.get(user_id, task_id)
                await refresh(connection, task, user_id, task_id, forms[user_id])
        return Outcome.SUCCESS

    async def on_task_event(event: Received, session: AsyncSession) -> Outcome:
        """One event, as a batch of one (a delivery one by one)."""
        return await on_task_events([event], session)

    return Consumer(name=NAME, handlers={TOPIC_TASK_EVENTS: on_task_event}, batch=on_task_events)
