"""Dead letters: events an in-process consumer could not apply, parked to be read and replayed."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.metrics import DEAD_LETTERS as DEAD_LETTERS_PARKED
from domain.adapters.sql import reading
from domain.adapters.tables import DeadLetterRow
from domain.ports import Clock, PublishFailed
from workers.consumer import Consumer, ConsumerRunner, Outcome, Received

log = logging.getLogger("dueflow.embedded")
DEAD_LETTERS = SQLModel.metadata.tables[DeadLetterRow.__tablename__]
MAX_ERROR = 4000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One parked event and why it was parked."""

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


class DeadLetters:
    """The dead-letter table of the in-process consumers `consumers`."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        consumers: Sequence[Consumer],
        clock: Clock,
    ) -> None:
        self._sessions = sessions
        self._consumers = {consumer.name: consumer for consumer in consumers}
        self._clock = clock
        self._runner = ConsumerRunner(sessions, clock)

    async def park(self, consumer: Consumer, event: Received, error: str, attempts: int) -> None:
        """Keep `event` for `consumer` to replay later; PublishFailed if it cannot be kept."""
        log.error(
            "event %s (%s, task %s) parked for %s after %d attempt(s): %s",
            *(event.event_id, event.event_type, event.task_id, consumer.name, attempts, error),
        )
        try:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    sa.insert(DEAD_LETTERS).values(
                        consumer=consumer.name,
                        topic=event.topic,
                        event_id=event.event_id,
                        task_id=event.task_id,
                        envelope=event.envelope,
                        error=error[:MAX_ERROR],
                        attempts=attempts,
                        created_at=self._clock.now(),
                    )
                )
        except Exception as exc:
            raise PublishFailed(f"could not park event {event.event_id}: {exc}") from exc
        DEAD_LETTERS_PARKED.labels(consumer.name, event.topic).inc()

    async def listed(self, include_replayed: bool = False) -> list[DeadLetter]:
        """The open dead letters, oldest first (with `include_replayed`, every one)."""
        query = sa.select(DEAD_LETTERS).order_by(DEAD_LETTERS.c.id)
        if not include_replayed:
            query = query.where(DEAD_LETTERS.c.replayed_at.is_(None))
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
            query = sa.select(DEAD_LETTERS).where(DEAD_LETTERS.c.id == dead_letter_id)
            row = (await session.execute(query)).mappings().first()
        if row is None:
            raise LookupError(f"no dead letter {dead_letter_id}")
        if row["replayed_at"] is not None:
            return Outcome.SUCCESS
        consumer = self._consumers.get(row["consumer"])
        if consumer is None:
            raise LookupError(f"dead letter {dead_letter_id} belongs to unknown {row['consumer']}")
        event = Received.parse(row["topic"], row["envelope"])
        outcome = await self._runner.process(consumer, event)
        if outcome is Outcome.SUCCESS:
            async with self._sessions() as session, session.begin():
                await session.execute(
                    sa.update(DEAD_LETTERS)
                    .where(DEAD_LETTERS.c.id == dead_letter_id)
                    .values(replayed_at=self._clock.now())
                )
        return outcome
