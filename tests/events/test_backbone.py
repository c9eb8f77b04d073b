"""The outbox relay and the embedded bus: every committed change reaches every consumer once in
effect, in order per task, and survives the bus being down. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.backoff import Backoff
from domain.clock import FixedClock
from domain.ports import OutboundMessage, PublishFailed
from domain.service import NewTask
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from tests.support.database import envelopes, messages, rows, scalar, truncate
from tests.support.waiting import eventually
from workers.audit import AUDIT_CONSUMER
from workers.consumer import Consumer, Outcome, Received
from workers.dead_letters import DeadLetters
from workers.embedded import EmbeddedBus

LATER = dt.timedelta(minutes=5)  # past any relay backoff


class Switchable:
    """A publisher in front of the real bus that can be down, or die after delivering."""

    def __init__(self, inner: EmbeddedBus) -> None:
        self.inner = inner
        self.down = False
        self.fail_after_delivery = 0
        self.calls = 0

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        self.calls += 1
        if self.down:
            raise PublishFailed("bus is down")
        await self.inner.publish(messages)
        if self.fail_after_delivery:
            self.fail_after_delivery -= 1
            raise PublishFailed("connection lost after delivery")


class Recorder:
    """A consumer that notes the order it sees events in, and can refuse chosen tasks."""

    def __init__(self, name: str = "recorder") -> None:
        self.seen: list[tuple[str, int]] = []
        self.poison: set[str] = set()
        self.consumer = Consumer(name=name, handlers={"task-events": self.handle})

    async def handle(self, event: Received, session: AsyncSession) -> Outcome:
        if event.task_id in self.poison:
            raise RuntimeError(f"cannot digest task {event.task_id}")
        self.seen.append((event.task_id, event.sequence))
        return Outcome.SUCCESS


@pytest.fixture
async def wired(
    database_url: str, clock: FixedClock, tmp_path: Path, runtime: Runtime
) -> AsyncIterator[tuple[Runtime, Switchable, Recorder]]:
    """A runtime whose relay publishes through a switchable bus to audit and a recorder."""
    recorder = Recorder()
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    consumers = [AUDIT_CONSUMER, recorder.consumer]
    letters = DeadLetters(sessions, consumers, clock)
    bus = EmbeddedBus(sessions, consumers, clock, letters, Backoff(base=0.001, attempts=3))
    switch = Switchable(bus)
    wired_runtime = await bootstrap(_settings(database_url, tmp_path), clock, switch)
    assert wired_runtime.workers is not None
    wired_runtime.workers.dead_letters = letters  # the letters of the bus it publishes to
    yield wired_runtime, switch, recorder
    await wired_runtime.close()


def _settings(database_url: str, tmp_path: Path, **extra: str) -> Settings:
    return Settings.from_env(
        {"DUEFLOW_DATABASE_URL": database_url, "DUEFLOW_DATA_DIR": str(tmp_path), **extra}
    )


async def test_every_committed_change_reaches_the_consumers_once(
    wired: tuple[Runtime, Switchable, Recorder],
) -> None:
    runtime, _, recorder = wired
    task = (await runtime.service.add("alice", NewTask(title="t", tags=["a"]))).task
    await runtime.service.update("alice", task.id, {"title": "t2"})
    await runtime.service.complete("alice", task.id)
    assert await runtime.relay.drain() == 3
    assert recorder.seen == [(task.id, 1), (task.id, 2), (task.id, 3)]
    audit = await rows(
        runtime, "SELECT event_type, sequence, user_id FROM audit_log ORDER BY sequence"
    )
    assert [tuple(r) for r in audit] == [
        ("TASK_CREATED", 1, "alice"),
        ("TASK_UPDATED", 2, "alice"),
        ("TASK_COMPLETED", 3, "alice"),
    ]
    assert await scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    backlog = await runtime.relay.backlog()
    assert backlog.size == 0 and backlog.oldest_age_seconds is None


async def test_nothing_uncommitted_is_published(
    wired: tuple[Runtime, Switchable, Recorder],
) -> None:
    runtime, switch, recorder = wired
    with pytest.raises(Exception, match="title"):
        await runtime.service.add("alice", NewTask(title=""))
    assert await runtime.relay.drain() == 0
    assert recorder.seen == [] and switch.calls == 0


async def test_a_thousand_changes_while_the_bus_is_down_all_arrive_once_it_returns(
    wired: tuple[Runtime, Switchable, Recorder], clock: FixedClock
) -> None:
    runtime, switch, recorder = wired
    switch.down = True
    for i in range(1000):
        await runtime.service.add("alice", NewTask(title=f"task {i}"))
    assert await runtime.relay.drain() == 0
    backlog = await runtime.relay.backlog()
    assert backlog.size == 1000
    pending = await rows(runtime, "SELECT max(attempts), max(last_error) FROM outbox")
    assert pending[0][0] >= 1 and "bus is down" in pending[0][1]

    switch.down = False
    clock.advance(LATER)
    assert await runtime.relay.drain() == 1000
    assert await scalar(runtime, "SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 1000
    assert await scalar(runtime, "SELECT count(DISTINCT event_id) FROM audit_log") == 1000
    assert len(recorder.seen) == 1000 and len(set(recorder.seen)) == 1000


async def test_a_delivery_whose_acknowledgement_is_lost_has_no_second_effect(
    wired: tuple[Runtime, Switchable, Recorder], clock: FixedClock
) -> None:
    runtime, switch, recorder = wired
    for i in range(5):
        await runtime.service.add("alice", NewTask(title=f"task {i}"))
    switch.fail_after_delivery = 1
    # the batch is delivered but the relay never hears back, so it publishes each row again
    assert await runtime.relay.drain() == 5
    assert switch.calls == 6
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 5
    assert len(recorder.seen) == 5
    assert await scalar(runtime, "SELECT count(*) FROM processed_events") == 10


async def test_events_left_unpublished_when_the_process_died_go_out_after_restart(
    database_url: str, clock: FixedClock, tmp_path: Path, runtime: Runtime
) -> None:
    for i in range(20):
        await runtime.service.add("alice", NewTask(title=f"task {i}"))
    await runtime.close()  # the process dies: committed, never published
    again = await bootstrap(_settings(database_url, tmp_path), clock)
    try:
        assert (await again.relay.backlog()).size == 20
        assert await again.relay.drain() == 20
        assert await scalar(again, "SELECT count(*) FROM audit_log") == 20
    finally:
        await again.close()


async def test_a_tasks_events_stay_in_order_when_its_first_publish_fails(
    wired: tuple[Runtime, Switchable, Recorder], clock: FixedClock
) -> None:
    runtime, switch, recorder = wired
    first = (await runtime.service.add("alice", NewTask(title="first"))).task
    switch.down = True
    assert await runtime.relay.drain() == 0
    switch.down = False
    await runtime.service.update("alice", first.id, {"title": "first, renamed"})
    other = (await runtime.service.add("alice", NewTask(title="other"))).task
    # first's TASK_CREATED is backing off; its update must wait behind it, other must not
    assert await runtime.relay.drain() == 1
    assert recorder.seen == [(other.id, 1)]
    clock.advance(LATER)
    assert await runtime.relay.drain() == 2
    assert recorder.seen == [(other.id, 1), (first.id, 1), (first.id, 2)]


async def test_a_poison_event_is_parked_and_the_others_go_through(
    wired: tuple[Runtime, Switchable, Recorder],
) -> None:
    runtime, _, recorder = wired
    bad = (await runtime.service.add("alice", NewTask(title="bad"))).task
    recorder.poison.add(bad.id)
    good = [(await runtime.service.add("alice", NewTask(title=f"g{i}"))).task for i in range(3)]
    assert await runtime.relay.drain() == 4
    assert [task_id for task_id, _ in recorder.seen] == [t.id for t in good]
    letters = await runtime.workers.dead_letters.listed()
    assert [(d.consumer, d.task_id, d.event_type) for d in letters] == [
        ("recorder", bad.id, "TASK_CREATED")
    ]
    assert "cannot digest" in letters[0].error and letters[0].attempts == 3
    # the other consumer was not held back by the poison either
    assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 4

    recorder.poison.clear()
    assert await runtime.workers.dead_letters.replay(letters[0].id) == Outcome.SUCCESS
    assert recorder.seen[-1] == (bad.id, 1)
    assert await runtime.workers.dead_letters.listed() == []
    assert len(await runtime.workers.dead_letters.listed(include_replayed=True)) == 1


async def test_a_consumer_sees_an_older_version_as_stale(
    wired: tuple[Runtime, Switchable, Recorder],
) -> None:
    runtime, _, _ = wired
    task = (await runtime.service.add("alice", NewTask(title="t"))).task
    await runtime.service.update("alice", task.id, {"title": "t2"})
    await runtime.relay.drain()
    seen: list[bool] = []

    async def note(event: Received, session: AsyncSession) -> Outcome:
        seen.append(event.stale)
        return Outcome.SUCCESS

    late = Consumer(name="late", handlers={"task-events": note})
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    clock = FixedClock(dt.datetime.now(dt.UTC))
    bus = EmbeddedBus(sessions, [late], clock, DeadLetters(sessions, [late], clock))
    for envelope in reversed(await envelopes(runtime)):  # newest first: the older one arrives late
        await bus.publish(messages([envelope]))
    assert seen == [False, True]


async def audited(runtime: Runtime, count: int) -> bool:
    return await scalar(runtime, "SELECT count(*) FROM audit_log") == count


async def test_the_relay_wakes_on_commit_without_waiting_for_its_poll(
    database_url: str, clock: FixedClock, tmp_path: Path, runtime: Runtime
) -> None:
    slow_poll = _settings(database_url, tmp_path, DUEFLOW_RELAY_POLL_SECONDS="60")
    live = await bootstrap(slow_poll, clock)
    try:
        async with live.running():
            await live.service.add("alice", NewTask(title="first"))
            await eventually(lambda: audited(live, 1), what="the relay's first pass to publish")
            await live.service.add("alice", NewTask(title="now"))
            # far sooner than the 60 s poll: only the commit's wake-up gets it there in time
            await eventually(lambda: audited(live, 2), what="the relay to publish on commit")
    finally:
        await live.close()


async def test_the_relay_publishes_in_a_pause_between_requests_not_during_one(
    database_url: str, clock: FixedClock, tmp_path: Path, runtime: Runtime
) -> None:
    patient = _settings(
        database_url,
        tmp_path,
        DUEFLOW_RELAY_POLL_SECONDS="60",
        DUEFLOW_RELAY_PATIENCE_SECONDS="30",
    )
    live = await bootstrap(patient, clock)
    try:
        with contextlib.ExitStack() as request:
            request.enter_context(live.foreground.serving())  # in flight before the relay starts
            async with live.running():
                await live.service.add("alice", NewTask(title="while serving"))
                # room for a relay that wrongly publishes mid-request to do so: nothing to await
                await asyncio.sleep(0.2)
                assert await audited(live, 0)
                request.close()  # the request ends: the pause the relay waits for
                await eventually(lambda: audited(live, 1), what="the relay to publish in the pause")
    finally:
        await live.close()


class Counting:
    """A publisher that counts how often each event reaches it, slowly enough to overlap."""

    def __init__(self) -> None:
        self.deliveries: dict[str, int] = {}
        self.order: list[tuple[str, int]] = []

    async def publish(self, messages: Sequence[OutboundMessage]) -> None:
        await asyncio.sleep(0.005)  # a slow publisher is the point: the relays' passes overlap
        for message in messages:
            if message.topic == "task-events":
                self.deliveries[message.event_id] = self.deliveries.get(message.event_id, 0) + 1
                self.order.append((message.task_id, message.data["sequence"]))


async def test_relays_side_by_side_on_postgres_publish_each_row_once_in_task_order(
    postgres_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    await truncate(postgres_url)
    producer = await bootstrap(_settings(postgres_url, tmp_path), clock)
    counting = Counting()
    relays = [await bootstrap(_settings(postgres_url, tmp_path), clock, counting) for _ in range(3)]
    try:
        tasks = [
            (await producer.service.add("alice", NewTask(title=f"t{i}"))).task for i in range(60)
        ]
        for task in tasks[:20]:
            await producer.service.update("alice", task.id, {"title": "again"})
            await producer.service.complete("alice", task.id)

        async def drained(runtime: Runtime) -> bool:
            return (
                await runtime.relay.drain_once() == 0 and (await runtime.relay.backlog()).size == 0
            )

        await asyncio.gather(
            *(
                eventually(lambda r=r: drained(r), what="a relay to find nothing left")
                for r in relays
            )
        )
        assert len(counting.deliveries) == 100
        assert set(counting.deliveries.values()) == {1}
        for task in tasks[:20]:
            assert [s for t, s in counting.order if t == task.id] == [1, 2, 3]
    finally:
        for runtime in (producer, *relays):
            await runtime.close()


async def test_a_large_batch_is_applied_in_transactions_of_at_most_the_limit(
    runtime: Runtime,
) -> None:
    for n in range(7):
        await runtime.service.add("alice", NewTask(title=f"t{n}"))
    sessions_seen: list[AsyncSession] = []  # one per transaction (kept, so no id is reused)

    async def note(event: Received, session: AsyncSession) -> Outcome:
        if not any(seen is session for seen in sessions_seen):
            sessions_seen.append(session)
        return Outcome.SUCCESS

    counted = Consumer(name="counted", handlers={"task-events": note})
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    clock = FixedClock(dt.datetime.now(dt.UTC))
    letters = DeadLetters(sessions, [counted], clock)
    bus = EmbeddedBus(sessions, [counted], clock, letters, batch_limit=3)
    await bus.publish(messages(await envelopes(runtime)))

    inbox = await rows(runtime, "SELECT count(*) FROM processed_events WHERE consumer = 'counted'")
    assert inbox[0][0] == 7
    assert len(sessions_seen) == 3  # 3 + 3 + 1
