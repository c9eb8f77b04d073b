"""One contract for every ReminderRepository: the SQL table (SQLite, PostgreSQL) and the Dapr
state store (through the fake sidecar), each used through a unit of work as the services do."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.dapr_state_reminders import PAGE, DaprStateReminders
from domain.adapters.reminder_sql import SqlReminderRepository
from domain.adapters.unit_of_work import SqlUnitOfWork, shared_repository
from domain.reminder_schedule import ReminderState, ScheduledReminder
from dueflow.bootstrap import Runtime
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.runtimes import NOW

PENDING, FIRED = ReminderState.PENDING, ReminderState.FIRED
Units = Callable[[], SqlUnitOfWork]


@pytest.fixture(params=["sql", "dapr-state"])
async def units(
    request: pytest.FixtureRequest, runtime: Runtime, sidecar: FakeDaprSidecar
) -> AsyncIterator[Units]:
    """Units of work whose `reminders` is the adapter under test."""
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    if request.param == "sql":
        yield lambda: SqlUnitOfWork(sessions, reminder_store=SqlReminderRepository)
        return
    async with DaprStateReminders(
        "statestore", sidecar.grpc_address, sidecar.http_endpoint, timeout=5.0
    ) as state:
        yield lambda: SqlUnitOfWork(sessions, reminder_store=shared_repository(state))


def reminder(
    n: int,
    minutes: float,
    *,
    user: str = "alice",
    task: str = "t1",
    state: ReminderState = PENDING,
) -> ScheduledReminder:
    return ScheduledReminder(
        id=f"reminder-{task}-{n:04d}",
        user_id=user,
        task_id=task,
        spec=f"PT{n}M",
        fire_at=NOW + dt.timedelta(minutes=minutes),
        task_version=1,
        state=state,
    )


async def put(units: Units, *reminders: ScheduledReminder) -> None:
    async with units() as uow:
        for item in reminders:
            await uow.reminders.put(item, NOW)
        await uow.commit()


async def test_a_stored_reminder_reads_back_field_for_field(units: Units) -> None:
    fired = dataclasses.replace(
        reminder(1, 5),
        state=FIRED,
        fired_at=NOW + dt.timedelta(minutes=5, microseconds=123456),
        late=True,
        reason="why not",
        task_version=7,
    )
    await put(units, fired)
    async with units() as uow:
        assert await uow.reminders.get(fired.id) == fired
        assert await uow.reminders.get("reminder-none") is None


async def test_put_replaces_the_reminder_of_the_same_id(units: Units) -> None:
    await put(units, reminder(1, 5))
    moved = dataclasses.replace(reminder(1, 5), fire_at=NOW + dt.timedelta(hours=3))
    await put(units, moved)
    async with units() as uow:
        assert await uow.reminders.get(moved.id) == moved
        assert await uow.reminders.for_task("t1") == [moved]


async def test_for_task_lists_that_tasks_reminders_whatever_their_state(units: Units) -> None:
    mine = [reminder(2, 5), reminder(1, 9, state=FIRED)]
    await put(units, *mine, reminder(3, 1, task="t2"))
    async with units() as uow:
        assert await uow.reminders.for_task("t1") == sorted(mine, key=lambda r: r.id)
        assert await uow.reminders.for_task("t3") == []


async def test_due_answers_pending_reminders_up_to_now_earliest_first(units: Units) -> None:
    await put(
        units,
        reminder(1, -1),
        reminder(2, -30, user="bob", task="t2"),
        reminder(3, 0),
        reminder(4, -10, state=FIRED),
        reminder(5, 1),
    )
    async with units() as uow:
        due = await uow.reminders.due(NOW, 10)
        assert [r.id for r in due] == ["reminder-t2-0002", "reminder-t1-0001", "reminder-t1-0003"]
        assert [r.id for r in await uow.reminders.due(NOW, 1)] == ["reminder-t2-0002"]
        assert await uow.reminders.due(NOW - dt.timedelta(hours=1), 10) == []


async def test_due_reads_past_one_page_of_the_query(units: Units) -> None:
    backlog = [reminder(n, -n / 60) for n in range(PAGE + 20)]
    await put(units, *backlog, reminder(9999, 5))
    async with units() as uow:
        due = await uow.reminders.due(NOW, 1000)
        assert [r.id for r in due] == [r.id for r in reversed(backlog)]
        assert len(await uow.reminders.due(NOW, PAGE + 5)) == PAGE + 5


async def test_next_moment_is_the_earliest_pending_one(units: Units) -> None:
    async with units() as uow:
        assert await uow.reminders.next_moment() is None
    await put(units, reminder(1, 30), reminder(2, 5, state=FIRED), reminder(3, 20, task="t2"))
    async with units() as uow:
        assert await uow.reminders.next_moment() == NOW + dt.timedelta(minutes=20)


async def test_upcoming_is_one_users_pending_reminders_until_a_moment(units: Units) -> None:
    await put(
        units,
        reminder(1, 60),
        reminder(2, 10),
        reminder(3, 5, user="bob", task="t2"),
        reminder(4, 20, state=FIRED),
        reminder(5, 24 * 60),
    )
    async with units() as uow:
        soon = await uow.reminders.upcoming("alice", NOW + dt.timedelta(hours=2), 10)
        assert [r.id for r in soon] == ["reminder-t1-0002", "reminder-t1-0001"]
        first = await uow.reminders.upcoming("alice", NOW + dt.timedelta(days=2), 1)
        assert [r.id for r in first] == ["reminder-t1-0002"]
        assert await uow.reminders.upcoming("carol", NOW + dt.timedelta(days=2), 10) == []


async def test_a_transition_happens_only_from_the_expected_state(units: Units) -> None:
    pending = reminder(1, 0)
    await put(units, pending)
    fired = dataclasses.replace(pending, state=FIRED, fired_at=NOW)
    async with units() as uow:
        assert await uow.reminders.transition(fired, PENDING, NOW) is True
        await uow.commit()
    async with units() as uow:
        assert await uow.reminders.transition(fired, PENDING, NOW) is False
        assert await uow.reminders.transition(reminder(2, 0), PENDING, NOW) is False  # absent
        assert await uow.reminders.get(pending.id) == fired


async def test_of_two_concurrent_transitions_exactly_one_wins(units: Units) -> None:
    pending = reminder(1, 0)
    await put(units, pending)

    async def fire(replica: int) -> bool:
        async with units() as uow:
            done = dataclasses.replace(pending, state=FIRED, fired_at=NOW, reason=str(replica))
            won = await uow.reminders.transition(done, PENDING, NOW)
            await uow.commit()
            return won

    results = await asyncio.gather(*(fire(n) for n in range(2)))
    assert sorted(results) == [False, True]
    async with units() as uow:
        stored = await uow.reminders.get(pending.id)
    assert stored is not None and stored.reason == str(results.index(True))


async def test_put_many_inserts_new_reminders_and_replaces_stored_ones_leaving_others(
    units: Units,
) -> None:
    other = reminder(9, 30, task="t2")
    await put(units, reminder(1, 5), reminder(2, 6), other)
    moved = dataclasses.replace(reminder(1, 5), fire_at=NOW + dt.timedelta(hours=3))
    fired = dataclasses.replace(reminder(2, 6), state=FIRED, fired_at=NOW)
    new = [reminder(n, 10 + n) for n in range(3, 23)]  # a task's 20 reminders at most, and more

    async with units() as uow:
        await uow.reminders.put_many([moved, fired, *new], NOW)
        await uow.reminders.put_many([], NOW)
        await uow.commit()

    async with units() as uow:
        assert await uow.reminders.for_task("t1") == sorted(
            [moved, fired, *new], key=lambda r: r.id
        )
        assert await uow.reminders.for_task("t2") == [other]


async def test_put_many_in_a_unit_left_without_commit_writes_nothing_in_sql(
    runtime: Runtime,
) -> None:
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    await put(lambda: SqlUnitOfWork(sessions), reminder(1, 5))
    async with SqlUnitOfWork(sessions) as uow:
        await uow.reminders.put_many([reminder(1, 50), reminder(2, 6)], NOW)
    async with SqlUnitOfWork(sessions) as uow:
        assert await uow.reminders.for_task("t1") == [reminder(1, 5)]
