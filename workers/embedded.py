"""The embedded event bus: hands published events to in-process consumers, durably.

publish() returns only when every consumer has applied each event or parked it in the
dead-letter table, so the relay marks a row delivered only once nothing can be lost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.metrics import declare_consumer
from domain.backoff import Backoff
from domain.ports import Clock, OutboundMessage
from workers.consumer import Consumer, ConsumerRunner, MalformedEvent, Outcome, Received
from workers.dead_letters import DeadLetters

log = logging.getLogger("dueflow.embedded")


# A failing handler is tried four times, 50, 100 and 200 ms apart, before its event is parked:
# publish() waits for it, and so does the relay.
HANDLER_BACKOFF = Backoff(base=0.05, attempts=4)


class EmbeddedBus:
    """An EventPublisher that runs the subscribed consumers in this process."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        consumers: Iterable[Consumer],
        clock: Clock,
        dead_letters: DeadLetters,
        backoff: Backoff = HANDLER_BACKOFF,
        batch_limit: int = 200,
    ) -> None:
        self._sessions = sessions
        self._consumers = tuple(consumers)
        for consumer in self._consumers:
            declare_consumer(consumer.name, consumer.topics)
        self._topics = {topic for consumer in self._consumers for topic in consumer.topics}
        self._clock = clock
        self._runner = ConsumerRunner(sessions, clock)
        self._backoff = backoff
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

    async def apply_in_transaction(
        self, session: AsyncSession, messages: Sequence[OutboundMessage]
    ) -> bool:
        """Apply `messages` through every consumer in `session`'s open transaction, the one in
        which the relay marks them delivered (OutboxRelay's same-database path). False when a
        consumer did not take them all: the caller rolls back and publishes them through
        publish(), which retries and parks one by one."""
        # parsed once, shared by the consumers: a handler never changes what it receives
        received = [Received.parse(m.topic, m.data) for m in messages if m.topic in self._topics]
        batches = []
        for consumer in self._consumers:
            events = [event for event in received if event.topic in consumer.handlers]
            if events:
                batches.append((consumer, events))
        return await self._runner.apply_all_in(session, batches) is Outcome.SUCCESS

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
        """Apply one event, retrying a failing handler; park it when the handler gives up."""
        error = ""
        for attempt in itertools.count(1):
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
            if not self._backoff.tries_again(attempt):
                break
            await asyncio.sleep(self._backoff.delay(attempt))
        await self._dead_letters.park(consumer, event, error, attempt)
