"""The embedded relay's passes: one transaction with the consumers, the general way when a
consumer does not take a batch, batches bounded by payload bytes, each event's payload
charged to its user, and no giving way to requests while a live view watches. SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.foreground import Foreground
from domain.adapters.outbox import CATCH_UP_FACTOR, OutboxRelay
from domain.adapters.sqlite_writer_queue import SUFFIX, WriterQueue
from domain.backoff import Backoff
from domain.clock import FixedClock
from domain.service import NewTask
from domain.work import WorkLedger
from dueflow.bootstrap import Runtime
from tests.support.database import rows, scalar
from tests.support.runtimes import NOW, embedded_runtime
from tests.support.waiting import eventually
from workers.audit import AUDIT_CONSUMER
from workers.consumer import INBOX, Consumer, Outcome, Received
from workers.dead_letters import DeadLetters
from workers.embedded import EmbeddedBus

LONG = "x" * 10_000  # a description that makes each event's payload some 20 kB


class Picky:
    """A consumer that cannot digest one task's events."""

    def __init__(self, refused_title: str) -> None:
        self.refused = refused_title
        self.applied: list[str] = []
        self.consumer = Consumer(name="picky", handlers={"task-events": self.handle})

    async def handle(self, event: Received, session: AsyncSession) -> Outcome:
        title = event.envelope["payload"]["task"]["title"]
        if title == self.refused:
            raise RuntimeError(f"cannot digest {title}")
        self.applied.append(title)
        return Outcome.SUCCESS


def relay_for(runtime: Runtime, clock: FixedClock, bus: EmbeddedBus, **options: int) -> OutboxRelay:
    return OutboxRelay(runtime.engine, bus, clock, same_database=bus, **options)


def bus_of(runtime: Runtime, clock: FixedClock, *consumers: Consumer) -> EmbeddedBus:
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    letters = DeadLetters(sessions, list(consumers), clock)
    return EmbeddedBus(sessions, consumers, clock, letters, Backoff(base=0.001, attempts=2))


async def test_a_pass_delivers_to_every_consumer_and_marks_its_rows_together(
    runtime: Runtime, clock: FixedClock
) -> None:
    picky = Picky(refused_title="none")
    relay = relay_for(runtime, clock, bus_of(runtime, clock, AUDIT_CONSUMER, picky.consumer))
    for n in range(3):
        await runtime.service.add("alice", NewTask(title=f"t{n}"))

    assert await relay.drain_once() == 3

    assert picky.applied == ["t0", "t1", "t2"]
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 3
    assert await scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    inbox = await rows(runtime, "SELECT consumer, count(*) FROM processed_events GROUP BY consumer")
    assert sorted(inbox) == [("audit", 3), ("picky", 3)]


class Noting:
    """A consumer that notes each event it applies: its title and whether it came stale."""

    def __init__(self, name: str) -> None:
        self.applied: list[tuple[str, bool]] = []
        self.consumer = Consumer(name=name, handlers={"task-events": self.handle})

    async def handle(self, event: Received, session: AsyncSession) -> Outcome:
        self.applied.append((event.envelope["payload"]["task"]["title"], event.stale))
        return Outcome.SUCCESS


async def _in_inbox(
    runtime: Runtime, consumer: str, event_id: str, task_id: str, sequence: int
) -> None:
    """Record in the inbox that `consumer` applied an event of the task, as of `sequence`."""
    async with runtime.engine.begin() as conn:
        await conn.execute(
            sa.insert(INBOX).values(
                consumer=consumer,
                event_id=event_id,
                task_id=task_id,
                sequence=sequence,
                processed_at=NOW,
            )
        )


async def test_a_pass_applies_an_event_only_to_the_consumers_whose_inbox_lacks_it(
    runtime: Runtime, clock: FixedClock
) -> None:
    early, late = Noting("early"), Noting("late")
    relay = relay_for(runtime, clock, bus_of(runtime, clock, early.consumer, late.consumer))
    task = (await runtime.service.add("alice", NewTask(title="once"))).task
    (event_id,) = (await rows(runtime, "SELECT event_id FROM outbox"))[0]
    await _in_inbox(runtime, "early", str(event_id), task.id, task.version)

    assert await relay.drain_once() == 1

    assert early.applied == []
    assert late.applied == [("once", False)]
    inbox = await rows(runtime, "SELECT consumer, count(*) FROM processed_events GROUP BY consumer")
    assert sorted(inbox) == [("early", 1), ("late", 1)]


async def test_a_pass_judges_staleness_by_each_consumer_s_own_latest_sequence(
    runtime: Runtime, clock: FixedClock
) -> None:
    ahead, behind = Noting("ahead"), Noting("behind")
    relay = relay_for(runtime, clock, bus_of(runtime, clock, ahead.consumer, behind.consumer))
    task = (await runtime.service.add("alice", NewTask(title="v1"))).task
    await runtime.service.update("alice", task.id, {"title": "v2"})
    # `ahead` already applied a later version of the task (under another event id)
    await _in_inbox(runtime, "ahead", "a-later-event", task.id, 9)

    assert await relay.drain() == 2  # a pass per event: a task's events go out in order

    assert ahead.applied == [("v1", True), ("v2", True)]
    assert behind.applied == [("v1", False), ("v2", False)]


async def test_a_batch_a_consumer_refuses_is_rolled_back_and_parked_event_by_event(
    runtime: Runtime, clock: FixedClock
) -> None:
    picky = Picky(refused_title="poison")
    relay = relay_for(runtime, clock, bus_of(runtime, clock, AUDIT_CONSUMER, picky.consumer))
    for title in ("before", "poison", "after"):
        await runtime.service.add("alice", NewTask(title=title))

    assert await relay.drain() == 3

    # once each in effect: the pass that failed was rolled back whole
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 3
    inbox = await rows(runtime, "SELECT consumer, count(*) FROM processed_events GROUP BY consumer")
    assert sorted(inbox) == [("audit", 3), ("picky", 2)]
    parked = await rows(runtime, "SELECT consumer, error FROM dead_letters")
    assert [(consumer, "cannot digest poison" in error) for consumer, error in parked] == [
        ("picky", True)
    ]
    assert await scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_a_pass_takes_rows_up_to_its_byte_budget_and_always_one(
    runtime: Runtime, clock: FixedClock
) -> None:
    bus = bus_of(runtime, clock, AUDIT_CONSUMER)
    for n in range(5):
        await runtime.service.add("alice", NewTask(title=f"big {n}", description=LONG))

    sizes = await rows(runtime, "SELECT length(CAST(payload AS TEXT)) FROM outbox")
    two_and_a_half = int(max(size for (size,) in sizes) * 2.5)

    assert await relay_for(runtime, clock, bus, batch_bytes=two_and_a_half).drain_once() == 2
    assert await relay_for(runtime, clock, bus, batch_bytes=1).drain_once() == 1
    assert await relay_for(runtime, clock, bus).drain_once() == 2
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 5


async def test_a_pass_charges_each_event_s_user_for_its_payload(
    runtime: Runtime, clock: FixedClock
) -> None:
    work = WorkLedger()
    bus = bus_of(runtime, clock, AUDIT_CONSUMER)
    relay = OutboxRelay(runtime.engine, bus, clock, same_database=bus, work=work)
    for n in range(2):
        await runtime.service.add("alice", NewTask(title=f"big {n}", description=LONG))
    await runtime.service.add("bob", NewTask(title="small"))
    payloads = dict(
        await rows(
            runtime,
            "SELECT user_id, sum(length(CAST(payload AS TEXT))) FROM outbox GROUP BY user_id",
        )
    )

    assert await relay.drain() == 3

    assert work.owed("alice") == payloads["alice"] > 2 * len(LONG)
    assert work.owed("bob") == payloads["bob"] < len(LONG)
    assert work.settle("alice") == payloads["alice"]
    assert work.owed("alice") == 0  # settled once


async def test_a_watched_relay_publishes_a_commit_without_waiting_for_a_pause_in_requests(
    runtime: Runtime, clock: FixedClock
) -> None:
    foreground = Foreground()
    relay = OutboxRelay(
        runtime.engine,
        bus := bus_of(runtime, clock, AUDIT_CONSUMER),
        clock,
        same_database=bus,
        foreground=foreground,
        patience_seconds=3600,  # unwatched, it would wait this long for a pause
        poll_seconds=3600,
        watched=lambda: True,  # a live view is open
    )
    stop = asyncio.Event()
    with foreground.serving():  # a request that never ends: no pause comes
        running = asyncio.create_task(relay.run(stop))
        try:
            await runtime.service.add("alice", NewTask(title="seen live"))
            relay.notify()
            async with asyncio.timeout(60):
                while await scalar(runtime, "SELECT count(*) FROM audit_log") == 0:
                    await asyncio.sleep(0.01)
        finally:
            stop.set()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    assert await rows(runtime, "SELECT task_title FROM audit_log") == [("seen live",)]
    assert await scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_behind_while_a_live_view_waits_a_pass_takes_a_larger_batch(
    runtime: Runtime, clock: FixedClock
) -> None:
    bus = bus_of(runtime, clock, AUDIT_CONSUMER)
    watching = True
    watched = OutboxRelay(
        runtime.engine, bus, clock, same_database=bus, batch_size=2, watched=lambda: watching
    )
    for n in range(14):
        await runtime.service.add("alice", NewTask(title=f"change {n}"))

    first, behind = await watched.drain_once(), await watched.drain_once()
    watching = False  # the view closed: batches are their usual size again
    after = await watched.drain_once()

    assert (first, behind, after) == (2, 2 * CATCH_UP_FACTOR, 2)
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 12


async def test_on_sqlite_a_pass_behind_while_a_live_view_waits_goes_ahead_of_queued_writers(
    tmp_path: Path, clock: FixedClock
) -> None:
    runtime = await embedded_runtime(f"sqlite+aiosqlite:///{tmp_path / 'q.db'}", tmp_path, clock)
    try:
        bus = bus_of(runtime, clock, AUDIT_CONSUMER)
        for n in range(2 + CATCH_UP_FACTOR):
            await runtime.service.add("alice", NewTask(title=f"change {n}"))
        queue = WriterQueue(str(tmp_path / f"q.db{SUFFIX}"))

        def relay() -> OutboxRelay:
            return OutboxRelay(
                runtime.engine, bus, clock, same_database=bus, batch_size=1, watched=lambda: True
            )

        behind, in_turn = relay(), relay()
        assert await behind.drain_once() == 1  # a full batch: it is behind now
        turn = queue.try_turn()  # a request's writer holds its turn in the queue
        assert turn is not None
        passing = asyncio.create_task(behind.drain_once())
        try:
            await eventually(passing.done, what="the pass behind to go ahead of the turn held")
            waiting = asyncio.create_task(in_turn.drain_once())  # not behind: waits its turn
            await asyncio.sleep(0.3)
            assert not waiting.done()
        finally:
            turn.release()
        assert passing.result() == CATCH_UP_FACTOR
        assert await asyncio.wait_for(waiting, 5) == 1
        assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 2 + CATCH_UP_FACTOR
    finally:
        await runtime.close()
