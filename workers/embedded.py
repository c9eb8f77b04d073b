"""The embedded event bus: hands published events to in-process consumers, durably.

publish() returns only when every consumer has applied each event or parked it in the
dead-letter table, so the relay marks a row delivered only once nothing can be lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.sql import reading
from domain.adapters.tables import DeadLetterRow
from domain.ports import Clock, OutboundMessage, PublishFailed
from workers.consumer import Consumer, ConsumerRunner, MalformedEvent, Outcome, Received

log = logging.getLogger("dueflow.embedded")
DEAD = SQLModel.metadata.tables[DeadLetterRow.__tablename__]


@dataclass(frozen=True, slots=True)
class HandlerRetry:
    """How often, and how patiently, a failing handler is tried before its event is parked."""

    attempts: int = 4
    base_seconds: float = 0.05

    def delay(self, attempt: int) -> float:
        return self.base_seconds * 2.0**attempt


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    consumer: str
    topic: str
    event_id: str
    task_id: str
    event_type: str
    error: str
    attempts: int
    created_at: dt.datetime
    replayed_at: dt.datetime | None


class EmbeddedBus:
    """An EventPublisher that runs the subscribed consumers in this process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        consumers: Iterable[Consumer],
        clock: Clock,
        retry: HandlerRetry | None = None,
        batch_limit: int = 200,
    ) -> None:
        self._sessions = sessions
        self._consumers = tuple(consumers)
        self._clock = clock
        self._runner = ConsumerRunner(sessions, clock)
        self._retry = retry or HandlerRetry()
        self._batch_limit = batch_limit

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        for consumer in self._consumers:
            events = [
                Received.parse(m.topic, m.data) for m in messages if m.topic in consumer.handlers
            ]
            # at most batch_limit events per transaction: on SQLite a transaction holds the one
            # write lock, and a reminder due meanwhile waits for it
            for start in range(0, len(events), self._batch_limit):
                await self._apply(consumer, events[start : start + self._batch_limit])

    async def _apply(self, consumer: Consumer, events: Sequence[Received]) -> None:
        """Apply events in one transaction, or else one by one."""
        try:
            batch = await self._runner.process_batch(consumer, events)
        except Exception as exc:
            log.warning("batch for %s failed (%s); one by one", consumer.name, exc)
            batch = Outcome.RETRY
        if batch is Outcome.SUCCESS:
            return
        for event in events:
            await self._deliver(consumer, event)

    async def _deliver(self, consumer: Consumer, event: Received) -> None:
        error = ""
        for attempt in range(self._retry.attempts):
            try:
                outcome = await self._runner.process(consumer, event)
            except MalformedEvent as exc:
                error = f"malformed: {exc}"
                break
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                outcome = Outcome.RETRY
            else:
                if outcome is Outcome.SUCCESS:
                    return
                error = f"handler answered {outcome}"
                if outcome is Outcome.DROP:
                    break
            if attempt + 1 < self._retry.attempts:
                await asyncio.sleep(self._retry.delay(attempt))
        await self._park(consumer, event, error, attempt + 1)

    async def _park(self, consumer: Consumer, event: Received, error: str, attempts: int) -> None:
        log.error(
            "event %s (%s, task %s) parked for %s after %d attempt(s): %s",
            event.event_id,
            event.event_type,
            event.task_id,
            consumer.name,
            attempts,
            error,
        )
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    sa.insert(DEAD).values(
                        consumer=consumer.name,
                        topic=event.topic,
                        event_id=event.event_id,
                        task_id=event.task_id,
                        envelope=event.envelope,
                        error=error[:4000],
                        attempts=attempts,
                        created_at=self._clock.now(),
                    )
                )
        except Exception as exc:
            raise PublishFailed(f"could not park event {event.event_id}: {exc}") from exc

    async def dead_letters(self, include_replayed: bool = False) -> list[DeadLetter]:
        query = sa.select(DEAD).order_by(DEAD.c.id)
        if not include_replayed:
            query = query.where(DEAD.c.replayed_at.is_(None))
        async with reading(self._sessions) as session:
            rows = (await session.execute(query)).mappings().all()
        return [
            DeadLetter(
                id=row["id"],
                consumer=row["consumer"],
                topic=row["topic"],
                event_id=row["event_id"],
                task_id=row["task_id"],
                event_type=str(row["envelope"].get("event_type")),
                error=row["error"],
                attempts=row["attempts"],
                created_at=row["created_at"],
                replayed_at=row["replayed_at"],
            )
            for row in rows
        ]

    async def replay(self, dead_letter_id: int) -> Outcome:
        """Run a parked event through its consumer again; on success it is marked replayed."""
        async with reading(self._sessions) as session:
            row = (
                (await session.execute(sa.select(DEAD).where(DEAD.c.id == dead_letter_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise LookupError(f"no dead letter {dead_letter_id}")
        if row["replayed_at"] is not None:
            return Outcome.SUCCESS
        consumer = next((c for c in self._consumers if c.name == row["consumer"]), None)
        if consumer is None:
            raise LookupError(f"dead letter {dead_letter_id} belongs to unknown {row['consumer']}")
        outcome = await self._runner.process(
            consumer, Received.parse(row["topic"], row["envelope"])
        )
        if outcome is Outcome.SUCCESS:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    sa.update(DEAD)
                    .where(DEAD.c.id == dead_letter_id)
                    .values(replayed_at=self._clock.now())
                )
        return outcome
