"""The outbox relay: publishes committed events in commit order per task, at least once."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlmodel import SQLModel

from domain.adapters.foreground import Foreground
from domain.adapters.metrics import (
    PUBLISH_ATTEMPTS,
    PUBLISH_FAILURES,
    PUBLISH_SECONDS,
    ROWS_PUBLISHED,
    ROWS_RETRIED,
)
from domain.adapters.polling import poll
from domain.adapters.sql import IN_TURN, READ_ONLY, begin_urgently
from domain.adapters.tables import OutboxRow
from domain.adapters.tracing import publishing
from domain.backoff import Backoff
from domain.events import EventType
from domain.ports import Clock, EventPublisher, OutboundMessage
from domain.work import WorkLedger

log = logging.getLogger("dueflow.relay")
OUTBOX = SQLModel.metadata.tables[OutboxRow.__tablename__]
COL = OUTBOX.c


# After a failed batch the relay publishes row by row, to let good rows past a bad one; this many
# failures in a row say the bus is down, and the rest of the batch waits for the next pass.
_BUS_DOWN_AFTER = 3
# A row that failed waits 0.5 s, doubling per attempt up to a minute; a pass that failed (the
# database, say) waits twice as long. Jittered, so that relays retry apart.
ROW_BACKOFF = Backoff(base=0.5, cap=60.0, jitter=0.5)
PASS_BACKOFF = Backoff(base=1.0, cap=60.0, jitter=0.5)
# SQLite: how long a claim keeps other relays off its rows (every `dueflow serve` runs a relay);
# a relay that dies mid-publish leaves its rows to the others after this long
CLAIM_SECONDS = 10.0
# A pass takes at most this many bytes of payload (and at least one row): the consumers' work on
# the event loop grows with the payloads, not with the row count, and more than the payloads (a
# task's reminders are scheduled with an event each carrying its snapshot). bench_fairness.py:
# the largest task is ~60 kB per event, another user's p99 suffers beyond a few per pass.
BATCH_BYTES = 128 * 1024
# Under a stream of commits a relay starts at most one pass per this long, so that what commits
# meanwhile goes out in one batch; a commit after a quiet spell goes out at once
# (bench_events.py: the live rate and commit -> consumer latency).
GATHER_SECONDS = 0.005
# Behind (the last pass was full) while a live view waits, a pass takes up to this many times
# the batch: a pass's fixed cost (on SQLite its wait for the write lock, on PostgreSQL the turns of
# the event loop between its statements) is then shared by more events, and the view catches up
# sooner; requests wait a little longer for the write lock meanwhile (bench_realtime.py)
CATCH_UP_FACTOR = 4


class SameDatabaseBus(Protocol):
    """A bus whose consumers keep their state in the outbox's own database (the embedded bus):
    it can apply a batch inside the transaction that marks the batch delivered."""

    async def apply_in_transaction(
        self, session: AsyncSession, messages: Sequence[OutboundMessage]
    ) -> bool:
        """Apply `messages` in `session`'s transaction; False if they must go the slow way."""
        ...


@dataclass(frozen=True, slots=True)
class Backlog:
    """What is still to publish: how many rows, and how long the oldest has waited."""

    size: int
    oldest_age_seconds: float | None


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    event_type: str
    task_id: str
    event_id: str
    payload: dict[str, Any]
    attempts: int

    def messages(self) -> list[OutboundMessage]:
        return [
            OutboundMessage(topic, self.event_id, self.event_type, self.task_id, self.payload)
            for topic in EventType(self.event_type).topics
        ]


class OutboxRelay:
    """Moves outbox rows to the event bus.

    A row is claimed only while no earlier row of its task is undelivered, so a task's events
    leave in commit order even with several relays. On PostgreSQL the claim is a row lock
    (FOR UPDATE SKIP LOCKED) held until the row is marked; SQLite has one writer at a time, so
    there the relay claims (moving the rows' next attempt CLAIM_SECONDS ahead, which keeps the
    other processes' relays off them), publishes outside any transaction, then marks.

    Given `same_database` (the embedded bus), a pass is one transaction: claim, every consumer's
    effects and inbox rows, and the mark commit together or not at all; a batch a consumer does
    not take goes the general way (publish, retries, dead letters) instead.

    Given `work`, the payload characters of each row claimed are charged to the row's user,
    for the transport to charge that user's next call (the events a change causes cost more
    than the call that made it).

    Given the process's `foreground`, each pass first waits for a pause of `settle` seconds
    between requests (at most `patience`): the relay then competes with no request for the event
    loop or the database, and the events of a burst of requests go out as one batch.
    deliver_now() runs a pass at once, whatever the pause (a read that must see its own writes).

    Given `watched` (true while a live view waits for events: the gateway's open connections),
    a pass instead starts as soon as a commit wakes it: the wait for a pause would be the whole
    of a live message's delay under a stream of requests. Batches then form by themselves: what
    commits during a pass goes out in the next one. On SQLite such a pass also queues for the
    write lock with the requests' writers (sqlite_driver.begin_in_turn) instead of waiting
    until no request writes. Behind, such passes take larger batches (CATCH_UP_FACTOR), and on
    SQLite take the write lock ahead of the requests' writers (sqlite_driver.begin_urgently):
    waiting behind every queued writer, a pass waited longer than it ran.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: EventPublisher,
        clock: Clock,
        batch_size: int = 200,
        poll_seconds: float = 1.0,
        backoff: Backoff = ROW_BACKOFF,
        foreground: Foreground | None = None,
        settle_seconds: float = 0.01,
        patience_seconds: float = 0.1,
        same_database: SameDatabaseBus | None = None,
        batch_bytes: int = BATCH_BYTES,
        gather_seconds: float = GATHER_SECONDS,
        work: WorkLedger | None = None,
        watched: Callable[[], bool] | None = None,
    ) -> None:
        self._engine = engine
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        self._publisher = publisher
        self._clock = clock
        self._batch = batch_size
        self._poll = poll_seconds
        self._backoff = backoff
        self._wake = asyncio.Event()
        self._locking = engine.dialect.name != "sqlite"
        self._foreground = foreground
        self._settle = settle_seconds
        self._patience = patience_seconds
        self._same_database = same_database
        self._batch_bytes = batch_bytes
        self._gather = gather_seconds
        self._work = work
        self._watched = watched
        self._pass_lock = asyncio.Lock()
        self._last_pass = float("-inf")
        self._full = False  # the last pass took a full batch: more is waiting

    def notify(self) -> None:
        """Wake the relay now: a transaction with events has committed."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; a failing database or bus only slows it down."""
        await poll(
            self.drain_once,
            wake=self._wake,
            stop=stop,
            every=self._poll,
            backoff=PASS_BACKOFF,
            log=log,
            name="outbox relay pass",
            give_way=self._give_way,
        )

    async def _give_way(self) -> None:
        """Wait for a pause between the requests being served (at most `patience`), and let a
        stream of commits gather for `gather` seconds since the last pass: what commits meanwhile
        goes out in one batch. A backlog (the last pass was full), or a live view waiting
        (`watched`), goes on at once."""
        if self._full or self._is_watched():
            return
        if self._foreground is not None:
            await self._foreground.quiet(self._settle, self._patience)
        rest = self._last_pass + self._gather - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)

    def _is_watched(self) -> bool:
        return self._watched is not None and self._watched()

    async def deliver_now(self) -> int:
        """One pass now, without giving way (after a pass already under way); rows delivered."""
        return await self.drain_once()

    async def drain(self, max_passes: int = 10_000) -> int:
        """Publish everything that is due now; answer how many rows were delivered."""
        total = 0
        for _ in range(max_passes):
            published = await self.drain_once()
            total += published
            if published == 0:
                break
        return total

    async def drain_once(self) -> int:
        """One pass: claim a batch, publish it, mark the outcome. Answer rows delivered."""
        async with self._pass_lock:
            self._last_pass = time.monotonic()
            if self._same_database is not None:
                delivered = await self._deliver_in_transaction(self._same_database)
                if delivered is not None:
                    return delivered
            return await self._publish_pass()

    async def _deliver_in_transaction(self, bus: SameDatabaseBus) -> int | None:
        """A pass as one transaction (see the class doc); None if the batch must go the
        general way, nothing of it committed."""
        now = self._clock.now()
        async with self._sessions() as session:
            try:
                async with session.begin():
                    if not self._locking and self._is_watched():
                        if self._full:  # behind: ahead of the requests' writers
                            await begin_urgently(session)
                        else:
                            await session.connection(execution_options={IN_TURN: True})
                    claimed = await self._claim(session, now, hold=False)
                    if not claimed:
                        return 0
                    messages = [m for row in claimed for m in row.messages()]
                    PUBLISH_ATTEMPTS.inc()
                    with publishing(messages) as traced, PUBLISH_SECONDS.time():
                        applied = await bus.apply_in_transaction(session, traced)
                    if not applied:
                        raise _GoTheGeneralWay
                    await self._mark(session, claimed, {row.id: None for row in claimed}, now)
            except _GoTheGeneralWay:
                return None
            except Exception as exc:
                log.warning("delivering a batch in one transaction failed (%s); one by one", exc)
                return None
        return len(claimed)

    async def _publish_pass(self) -> int:
        now = self._clock.now()
        async with self._sessions() as session:
            if self._locking:
                async with session.begin():
                    claimed = await self._claim(session, now)
                    outcome = await self._publish(claimed)
                    await self._mark(session, claimed, outcome, now)
                return _delivered_count(outcome)
            async with session.begin():
                claimed = await self._claim(session, now)
            outcome = await self._publish(claimed)
            async with session.begin():
                await self._mark(session, claimed, outcome, now)
            return _delivered_count(outcome)

    async def backlog(self) -> Backlog:
        return await outbox_backlog(self._engine, self._clock)

    async def _claim(
        self, session: AsyncSession, now: dt.datetime, hold: bool = True
    ) -> list[_Claimed]:
        """The next batch: rows due whose task has no earlier row undelivered, in id order, up
        to `batch` rows and `batch_bytes` of payload (CATCH_UP_FACTOR times that, behind while
        a live view waits). On SQLite with `hold`, the rows are kept
        from other relays for CLAIM_SECONDS (the pass publishes outside its transaction)."""
        factor = CATCH_UP_FACTOR if self._full and self._is_watched() else 1
        rows_limit, bytes_limit = self._batch * factor, self._batch_bytes * factor
        earlier = OUTBOX.alias("earlier")
        # the payload as text: only the rows within the byte budget are decoded
        payload = sa.cast(COL.payload, sa.Text)
        query = (
            sa.select(COL.id, COL.event_type, COL.task_id, COL.event_id, payload, COL.attempts)
            .where(
                COL.published_at.is_(None),
                sa.or_(COL.next_attempt_at.is_(None), COL.next_attempt_at <= now),
                ~sa.exists().where(
                    earlier.c.task_id == COL.task_id,
                    earlier.c.published_at.is_(None),
                    earlier.c.id < COL.id,
                ),
            )
            .order_by(COL.id)
            .limit(rows_limit)
        )
        if self._locking:
            query = query.with_for_update(skip_locked=True, of=OUTBOX)
        rows = (await session.execute(query)).all()
        claimed: list[_Claimed] = []
        taken = 0  # the payloads are JSON written with ASCII escapes: characters are bytes
        for id_, event_type, task_id, event_id, text, attempts in rows:
            if claimed and taken + len(text) > bytes_limit:
                break
            taken += len(text)
            payload = json.loads(text)
            if self._work is not None:
                # the user whose change recorded the event pays for its handling (domain.work)
                self._work.charge(str(payload.get("user_id")), len(text))
            claimed.append(_Claimed(id_, event_type, task_id, event_id, payload, attempts))
        self._full = len(claimed) < len(rows) or len(rows) == rows_limit
        if claimed and hold and not self._locking:
            await session.execute(
                sa.update(OUTBOX)
                .where(COL.id.in_([row.id for row in claimed]))
                .values(next_attempt_at=now + dt.timedelta(seconds=CLAIM_SECONDS))
            )
        return claimed

    async def _publish(self, claimed: Sequence[_Claimed]) -> dict[int, str | None]:
        """Publish the batch; answer row id -> None when delivered, or the error text."""
        if not claimed:
            return {}
        try:
            await self._send([m for row in claimed for m in row.messages()])
            return {row.id: None for row in claimed}
        except Exception as exc:
            if len(claimed) == 1:
                return {claimed[0].id: _describe(exc)}
            log.warning("publishing a batch of %d failed (%s); row by row", len(claimed), exc)
        outcome: dict[int, str | None] = {}
        failures_in_a_row, last_error = 0, ""
        for row in claimed:
            if failures_in_a_row >= _BUS_DOWN_AFTER:
                # not one bad message but the bus itself: the rest wait for the next pass
                outcome[row.id] = f"not tried, the rows before it failed: {last_error}"
                continue
            try:
                await self._send(row.messages())
                outcome[row.id] = None
                failures_in_a_row = 0
            except Exception as exc:
                outcome[row.id] = last_error = _describe(exc)
                failures_in_a_row += 1
        return outcome

    async def _send(self, messages: Sequence[OutboundMessage]) -> None:
        """One publish call to the bus, counted and timed."""
        PUBLISH_ATTEMPTS.inc()
        with (
            publishing(messages) as traced,
            PUBLISH_FAILURES.count_exceptions(),
            PUBLISH_SECONDS.time(),
        ):
            await self._publisher.publish(traced)

    async def _mark(
        self,
        session: AsyncSession,
        claimed: Sequence[_Claimed],
        outcome: dict[int, str | None],
        now: dt.datetime,
    ) -> None:
        delivered = [row.id for row in claimed if row.id in outcome and outcome[row.id] is None]
        ROWS_PUBLISHED.inc(len(delivered))
        ROWS_RETRIED.inc(len(claimed) - len(delivered))
        if delivered:
            await session.execute(
                sa.update(OUTBOX)
                .where(COL.id.in_(delivered))
                .values(
                    published_at=self._clock.now(),
                    attempts=COL.attempts + 1,
                    last_error=None,
                    next_attempt_at=None,
                )
            )
        for row in claimed:
            error = outcome.get(row.id)
            if error is None:
                continue
            retry_at = now + dt.timedelta(seconds=self._backoff.delay(row.attempts + 1))
            await session.execute(
                sa.update(OUTBOX)
                .where(COL.id == row.id)
                .values(attempts=row.attempts + 1, next_attempt_at=retry_at, last_error=error)
            )
            log.warning(
                "event %s (%s) not published, attempt %d; retry at %s: %s",
                row.event_id,
                row.event_type,
                row.attempts + 1,
                retry_at.isoformat(),
                error,
            )


class _GoTheGeneralWay(Exception):
    """Rolls a one-transaction pass back: a consumer did not take the batch."""


def _delivered_count(outcome: dict[int, str | None]) -> int:
    return sum(1 for error in outcome.values() if error is None)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:2000]


async def outbox_backlog(engine: AsyncEngine, clock: Clock) -> Backlog:
    """How many rows wait to be published, and how long the oldest has."""
    async with engine.connect() as conn:
        await conn.execution_options(**{READ_ONLY: True})
        query = sa.select(sa.func.count(), sa.func.min(COL.created_at)).where(
            COL.published_at.is_(None)
        )
        size, oldest = (await conn.execute(query)).one()
    age = (clock.now() - oldest).total_seconds() if oldest is not None else None
    return Backlog(size=int(size), oldest_age_seconds=age)
