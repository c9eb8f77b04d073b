"""Consumers: a topic -> handler table per worker, applied once each through an inbox."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import itertools
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from opentelemetry.trace import SpanKind
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.metrics import EVENT_LAG, EVENTS_HANDLED, HANDLER_SECONDS
from domain.adapters.sql import reading
from domain.adapters.tables import ProcessedEventRow
from domain.adapters.tracing import correlated, recording, span, traceparent_of
from domain.ports import Clock

log = logging.getLogger("dueflow.consumer")
INBOX = SQLModel.metadata.tables[ProcessedEventRow.__tablename__]


class Outcome(StrEnum):
    """What a handler answers, in Dapr's words."""

    SUCCESS = "SUCCESS"
    RETRY = "RETRY"  # transient: deliver again later
    DROP = "DROP"  # poison: never deliver again (dead-letter it)


# the outcome labels of dueflow_events_handled_total besides retry and drop
SUCCESS, DUPLICATE, ERROR = "success", "duplicate", "error"


class MalformedEvent(ValueError):
    """The message is not a v1 event envelope."""


@dataclass(frozen=True, slots=True)
class Received:
    """An event as a handler sees it; `stale` when the consumer saw a later version of the task."""

    topic: str
    event_id: str
    event_type: str
    task_id: str
    user_id: str
    sequence: int
    envelope: dict[str, Any]
    stale: bool = False
    # the W3C traceparent its handling continues: the CloudEvent's in Dapr mode, else the one
    # the envelope carries from the span that recorded the event (domain/adapters/tracing.py)
    parent: str | None = None

    @classmethod
    def parse(cls, topic: str, envelope: Mapping[str, Any]) -> Received:
        try:
            metadata = envelope["metadata"]
            if metadata["version"] != "v1":
                raise MalformedEvent(f"contract version {metadata['version']!r} is not v1")
            sequence = envelope["sequence"]
            if not isinstance(sequence, int) or isinstance(sequence, bool):
                raise MalformedEvent("sequence is not an integer")
            fields = [envelope[k] for k in ("event_id", "event_type", "task_id", "user_id")]
            if not all(isinstance(f, str) and f for f in fields):
                raise MalformedEvent("event_id, event_type, task_id and user_id must be strings")
            if not isinstance(envelope["payload"], dict):
                raise MalformedEvent("payload is not an object")
        except (KeyError, TypeError) as exc:
            raise MalformedEvent(f"missing or malformed field {exc}") from None
        event_id, event_type, task_id, user_id = fields
        return cls(
            topic,
            event_id,
            event_type,
            task_id,
            user_id,
            sequence,
            envelope=dict(envelope),
            parent=traceparent_of(envelope),
        )

    def handling(self, consumer: str) -> AbstractContextManager[object]:
        """The span of `consumer` handling this event (a child of the span that recorded it),
        with its correlation id and this event as the cause named in the log lines meanwhile."""
        metadata = self.envelope.get("metadata")
        correlation_id = metadata.get("correlation_id") if isinstance(metadata, dict) else None
        stack = ExitStack()
        stack.enter_context(correlated(correlation_id, self.event_id))
        if self.parent is None and not recording():
            return stack  # no trace to join and none recorded: the log ids are all there is
        stack.enter_context(
            span(
                f"process {self.topic}",
                parent=self.parent,
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.destination.name": self.topic,
                    "messaging.message.id": self.event_id,
                    "dueflow.consumer": consumer,
                    "dueflow.event_type": self.event_type,
                },
            )
        )
        return stack


class _Abandon(Exception):
    """Leaves a transaction without commit, carrying the handler's answer."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome = outcome


Handler = Callable[[Received, AsyncSession], Awaitable[Outcome]]
# applies several events (of the consumer's topics, in order, none seen before) in one go
BatchHandler = Callable[[Sequence[Received], AsyncSession], Awaitable[Outcome]]


@dataclass(frozen=True, slots=True)
class Consumer:
    """One worker's subscriptions: its name (the inbox key) and a handler per topic; `batch`,
    when given, stands for the handlers where a batch is applied in one transaction (it must
    have the same effect as the handlers one event after another)."""

    name: str
    handlers: Mapping[str, Handler]
    batch: BatchHandler | None = None

    @property
    def topics(self) -> tuple[str, ...]:
        return tuple(self.handlers)


class ConsumerRunner:
    """Applies events through a consumer's handlers, each once, in one transaction with its inbox
    row: a redelivered event has no second effect, and a failed one leaves no effect at all."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock

    async def process(self, consumer: Consumer, event: Received) -> Outcome:
        """Apply one event; exceptions from the handler propagate (the host decides to retry).
        Each is counted by outcome (dueflow_events_handled_total) and timed."""
        started = time.perf_counter()
        try:
            with event.handling(consumer.name):
                outcome, label = await self._apply(consumer, event)
        except Exception:
            self._observe(consumer, event, ERROR, time.perf_counter() - started)
            raise
        self._observe(consumer, event, label, time.perf_counter() - started)
        return outcome

    async def _apply(self, consumer: Consumer, event: Received) -> tuple[Outcome, str]:
        """process() without the metrics: the outcome, and its label (duplicate for an event
        the inbox already holds)."""
        handler = consumer.handlers.get(event.topic)
        if handler is None:
            raise MalformedEvent(f"{consumer.name} has no handler for topic {event.topic!r}")
        async with self._sessions() as session:
            try:
                async with session.begin():
                    if await _seen(session, consumer.name, event.event_id):
                        return Outcome.SUCCESS, DUPLICATE
                    latest = await _latest_sequence(session, consumer.name, event.task_id)
                    stale = latest is not None and event.sequence <= latest
                    outcome = await handler(_with_stale(event, stale), session)
                    if outcome is not Outcome.SUCCESS:
                        raise _Abandon(outcome)
                    await session.execute(
                        sa.insert(INBOX).values(**self._inbox_row(consumer, event))
                    )
            except _Abandon as abandon:
                return abandon.outcome, abandon.outcome.lower()
            except IntegrityError:
                # a concurrent delivery of the same event committed first: its effect stands
                if await self._seen_now(consumer.name, event.event_id):
                    return Outcome.SUCCESS, DUPLICATE
                raise
        return Outcome.SUCCESS, SUCCESS

    async def process_batch(self, consumer: Consumer, events: Sequence[Received]) -> Outcome:
        """Apply several events in one transaction; anything but SUCCESS for all rolls back all,
        and the caller falls back to process() one by one (which counts them then)."""
        started = time.perf_counter()
        async with self._sessions() as session:
            try:
                async with session.begin():
                    applied = await self._apply_batch(session, consumer, events)
            except _Abandon as abandon:
                return abandon.outcome
            except IntegrityError:
                return Outcome.RETRY
        self._observe_batch(consumer, events, applied, time.perf_counter() - started)
        return Outcome.SUCCESS

    async def apply_all_in(
        self, session: AsyncSession, batches: Sequence[tuple[Consumer, Sequence[Received]]]
    ) -> Outcome:
        """Apply each consumer's events in `session`'s open transaction, which the caller commits
        (the embedded relay's, which marks them delivered in it too): one read of the inbox
        for all the consumers, one insert of their inbox rows. Anything but SUCCESS leaves the
        transaction to be rolled back; the events are counted once it commits."""
        started = time.perf_counter()
        inbox = await InboxState.read(session, batches)
        done: list[tuple[Consumer, Sequence[Received], list[Received], float]] = []
        rows: list[dict[str, Any]] = []
        try:
            for index, (consumer, events) in enumerate(batches):
                if index:
                    # on SQLite a transaction holding the write lock runs its statements on the
                    # event loop without a pause: a turn between consumers serves waiting
                    # requests (bench_fairness.py)
                    await asyncio.sleep(0)
                began = time.perf_counter()
                applied = await self._apply_events(session, consumer, events, inbox)
                rows.extend(self._inbox_row(consumer, e) for e in applied)
                done.append((consumer, events, applied, time.perf_counter() - began))
        except _Abandon as abandon:
            return abandon.outcome
        if rows:
            await session.execute(sa.insert(INBOX), rows)
        # each consumer's own time, and a share of the inbox's read and insert
        common = time.perf_counter() - started - sum(own for *_, own in done)
        common_share = common / max(len(done), 1)

        def observe() -> None:
            for consumer, events, applied, own in done:
                self._observe_batch(consumer, events, applied, own + common_share)

        after_commit(session, observe)
        return Outcome.SUCCESS

    async def _apply_batch(
        self, session: AsyncSession, consumer: Consumer, events: Sequence[Received]
    ) -> list[Received]:
        """The batch's effects and inbox rows in `session`; answers the events applied (the
        others were seen already). _Abandon carries a handler's answer other than SUCCESS."""
        inbox = await InboxState.read(session, [(consumer, events)])
        applied = await self._apply_events(session, consumer, events, inbox)
        if applied:
            await session.execute(sa.insert(INBOX), [self._inbox_row(consumer, e) for e in applied])
        return applied

    async def _apply_events(
        self,
        session: AsyncSession,
        consumer: Consumer,
        events: Sequence[Received],
        inbox: InboxState,
    ) -> list[Received]:
        """The effects of the events `inbox` has not seen, in `session`, without their inbox
        rows; `inbox` then counts them as seen. Answers the events applied."""
        seen = inbox.seen.setdefault(consumer.name, set())
        latest = inbox.latest.setdefault(consumer.name, {})
        applied: list[Received] = []
        for event in events:
            if event.event_id in seen:
                continue
            handler = consumer.handlers.get(event.topic)
            if handler is None:
                raise _Abandon(Outcome.DROP)
            stale = event.sequence <= latest.get(event.task_id, 0)
            if consumer.batch is None:
                with event.handling(consumer.name):
                    outcome = await handler(_with_stale(event, stale), session)
                if outcome is not Outcome.SUCCESS:
                    raise _Abandon(outcome)
            latest[event.task_id] = max(latest.get(event.task_id, 0), event.sequence)
            seen.add(event.event_id)
            applied.append(_with_stale(event, stale))
        if consumer.batch is not None and applied:
            with ExitStack() as handling:  # each event's span covers the batch it is handled in
                for event in applied:
                    handling.enter_context(event.handling(consumer.name))
                outcome = await consumer.batch(applied, session)
            if outcome is not Outcome.SUCCESS:
                raise _Abandon(outcome)
        return applied

    def _observe_batch(
        self,
        consumer: Consumer,
        events: Sequence[Received],
        applied: Sequence[Received],
        seconds: float,
    ) -> None:
        # the batch's time, shared among its events; each labelled series looked up once
        share = seconds / len(events) if events else 0.0
        applied_ids = {e.event_id for e in applied}
        now = self._clock.now()
        counts: Counter[tuple[str, str]] = Counter()
        for topic, group in itertools.groupby(events, key=lambda e: e.topic):
            topic = topic if topic in consumer.handlers else "unknown"
            timing = HANDLER_SECONDS.labels(consumer.name, topic)
            lags = EVENT_LAG.labels(consumer.name, topic)
            for event in group:
                timing.observe(share)
                if event.event_id not in applied_ids:
                    counts[topic, DUPLICATE] += 1
                    continue
                counts[topic, SUCCESS] += 1
                lag = _lag_seconds(event, now)
                if lag is not None:
                    lags.observe(lag)
        for (topic, label), count in counts.items():
            EVENTS_HANDLED.labels(consumer.name, topic, label).inc(count)

    def _observe(self, consumer: Consumer, event: Received, label: str, seconds: float) -> None:
        topic = event.topic if event.topic in consumer.handlers else "unknown"
        EVENTS_HANDLED.labels(consumer.name, topic, label).inc()
        HANDLER_SECONDS.labels(consumer.name, topic).observe(seconds)
        if label == SUCCESS:
            lag = _lag_seconds(event, self._clock.now())
            if lag is not None:
                EVENT_LAG.labels(consumer.name, topic).observe(lag)

    async def _seen_now(self, consumer: str, event_id: str) -> bool:
        async with reading(self._sessions) as session:
            return await _seen(session, consumer, event_id)

    def _inbox_row(self, consumer: Consumer, event: Received) -> dict[str, Any]:
        return {
            "consumer": consumer.name,
            "event_id": event.event_id,
            "task_id": event.task_id,
            "sequence": event.sequence,
            "processed_at": self._clock.now(),
        }


def _lag_seconds(event: Received, now: dt.datetime) -> float | None:
    """Seconds from the event's commit (its timestamp) to `now`; None if it has no usable one."""
    try:
        stamp = dt.datetime.fromisoformat(str(event.envelope["timestamp"]))
        return max((now - stamp).total_seconds(), 0.0)
    except (KeyError, TypeError, ValueError):
        return None


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call `callback` once the handler's inbox transaction commits (never if it rolls back):
    whatever it wakes then reads what the handler wrote."""
    sa.event.listen(session.sync_session, "after_commit", lambda _session: callback(), once=True)


def _with_stale(event: Received, stale: bool) -> Received:
    if stale == event.stale:
        return event
    return dataclasses.replace(event, stale=stale)


async def _seen(session: AsyncSession, consumer: str, event_id: str) -> bool:
    query = sa.select(INBOX.c.event_id).where(
        INBOX.c.consumer == consumer, INBOX.c.event_id == event_id
    )
    return (await session.execute(query)).first() is not None


@dataclass(slots=True)
class InboxState:
    """What the inbox holds of a batch for its consumers: by consumer name, the event ids
    already applied and each task's latest sequence applied."""

    seen: dict[str, set[str]]
    latest: dict[str, dict[str, int]]

    @classmethod
    async def read(
        cls, session: AsyncSession, batches: Sequence[tuple[Consumer, Sequence[Received]]]
    ) -> InboxState:
        """Two queries whatever the number of consumers: the batch's events seen, and the
        latest sequence of its tasks, each consumer's."""
        names = sorted({consumer.name for consumer, events in batches if events})
        state = cls(seen={name: set() for name in names}, latest={name: {} for name in names})
        if not names:
            return state
        event_ids = sorted({e.event_id for _, events in batches for e in events})
        task_ids = sorted({e.task_id for _, events in batches for e in events})
        seen = sa.select(INBOX.c.consumer, INBOX.c.event_id).where(
            INBOX.c.consumer.in_(names), INBOX.c.event_id.in_(event_ids)
        )
        for consumer, event_id in (await session.execute(seen)).all():
            state.seen[consumer].add(event_id)
        latest = (
            sa.select(INBOX.c.consumer, INBOX.c.task_id, sa.func.max(INBOX.c.sequence))
            .where(INBOX.c.consumer.in_(names), INBOX.c.task_id.in_(task_ids))
            .group_by(INBOX.c.consumer, INBOX.c.task_id)
        )
        for consumer, task_id, top in (await session.execute(latest)).all():
            state.latest[consumer][task_id] = int(top)
        return state


async def _latest_sequence(session: AsyncSession, consumer: str, task_id: str) -> int | None:
    query = sa.select(sa.func.max(INBOX.c.sequence)).where(
        INBOX.c.consumer == consumer, INBOX.c.task_id == task_id
    )
    value = (await session.execute(query)).scalar()
    return int(value) if value is not None else None
