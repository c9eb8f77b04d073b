"""The embedded event bus: hands published events to in-process consumers, durably.

publish() returns only when every consumer has applied each event or parked it in the
dead-letter table, so the relay marks a row delivered only once nothing can be lost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.ports import Clock, OutboundMessage
from workers.consumer import Consumer, ConsumerRunner, MalformedEvent, Outcome, Received
from workers.dead_letters import DeadLetters

log = logging.getLogger("dueflow.embedded")


@dataclass(frozen=True, slots=True)
class HandlerRetry:
    """How often, and how patiently, a failing handler is tried before its event is parked."""

    attempts: int = 4
    base_seconds: float = 0.05

    def delay(self, attempt: int) -> float:
        return self.base_seconds * 2.0**attempt


class EmbeddedBus:
    """An EventPublisher that runs the subscribed consumers in this process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        consumers: Iterable[Consumer],
        clock: Clock,
        dead_letters: DeadLetters,
        retry: HandlerRetry | None = None,
        batch_limit: int = 200,
    ) -> None:
        self._sessions = sessions
        self._consumers = tuple(consumers)
        self._clock = clock
        self._runner = ConsumerRunner(sessions, clock)
        self._retry = retry or HandlerRetry()
        self._batch_limit = batch_limit
        self._dead_letters = dead_letters

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
        await self._dead_letters.park(consumer, event, error, attempt + 1)
