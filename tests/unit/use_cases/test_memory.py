"""The in-memory unit of work keeps the promises of the port: all or nothing at commit,
optimistic concurrency, and the read-only and inserts-only units it was asked for."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.errors import ConcurrentChange, IdempotencyRace
from domain.events import created_event
from domain.memory import MemoryStore
from domain.model import Task
from domain.ports import IdempotencyRecord, UnitOfWorkMisuse
from domain.reminder_schedule import ReminderState, ScheduledReminder
from tests.support.use_cases import NOW, USER


def _task(title: str = "Plan trip") -> Task:
    return Task(id=f"t-{title}", user_id=USER, title=title, created_at=NOW, updated_at=NOW)


async def _stored(store: MemoryStore, task: Task) -> None:
    async with store(inserts_only=True) as uow:
        await uow.tasks.add(task)
        await uow.commit()


async def test_leaving_without_commit_drops_the_writes_and_the_events() -> None:
    store = MemoryStore()
    task = _task()

    async with store() as uow:
        await uow.tasks.add(task)
        uow.record(created_event(task, NOW, source="test"))

    assert store.tasks == {} and store.events == []


async def test_a_commit_applies_the_writes_and_records_the_events_in_order() -> None:
    store = MemoryStore()
    first, second = _task("a"), _task("b")

    async with store() as uow:
        for task in (first, second):
            await uow.tasks.add(task)
            uow.record(created_event(task, NOW, source="test"))
        await uow.commit()

    assert list(store.tasks) == [first.id, second.id]
    assert [e.task_id for e in store.events] == [first.id, second.id]


async def test_a_task_read_is_a_copy_that_reaches_the_store_only_through_save() -> None:
    store = MemoryStore()
    await _stored(store, _task())

    async with store() as uow:
        task = await uow.tasks.get(USER, "t-Plan trip")
        assert task is not None
        task.title = "changed"
        await uow.commit()

    assert store.tasks["t-Plan trip"].title == "Plan trip"


async def test_a_save_at_a_version_the_store_has_moved_past_is_a_concurrent_change() -> None:
    store = MemoryStore()
    await _stored(store, _task())

    async with store() as first, store() as second:
        mine = await first.tasks.get(USER, "t-Plan trip")
        theirs = await second.tasks.get(USER, "t-Plan trip")
        assert mine is not None and theirs is not None
        mine.version = theirs.version = 2
        await first.tasks.save(mine, expected_version=1)
        await second.tasks.save(theirs, expected_version=1)
        await first.commit()
        with pytest.raises(ConcurrentChange):
            await second.commit()
        with pytest.raises(ConcurrentChange):
            await second.tasks.save(theirs, expected_version=1)

    assert store.tasks["t-Plan trip"].version == 2


async def test_an_idempotency_key_is_claimed_once() -> None:
    store = MemoryStore()
    record = IdempotencyRecord("hash", "t-1")

    async with store() as first, store() as second:
        await first.tasks.remember_idempotency(USER, "k", record, NOW)
        await second.tasks.remember_idempotency(USER, "k", record, NOW)
        await first.commit()
        with pytest.raises(IdempotencyRace):
            await second.commit()

    async with store() as third:
        with pytest.raises(IdempotencyRace):
            await third.tasks.remember_idempotency(USER, "k", record, NOW)
        assert await third.tasks.find_idempotency(USER, "k") == record


async def test_a_read_only_unit_refuses_writes_and_a_commit() -> None:
    store = MemoryStore()

    async with store(read_only=True) as uow:
        with pytest.raises(UnitOfWorkMisuse):
            await uow.tasks.add(_task())
        with pytest.raises(UnitOfWorkMisuse):
            await uow.commit()


async def test_an_inserts_only_unit_refuses_reads() -> None:
    store = MemoryStore()

    async with store(inserts_only=True) as uow:
        with pytest.raises(UnitOfWorkMisuse):
            await uow.tasks.get(USER, "t-1")


async def test_reminders_commit_with_the_unit_and_move_only_from_the_state_expected() -> None:
    store = MemoryStore()
    soon = ScheduledReminder("r1", USER, "t-1", "PT1H", NOW, 1, ReminderState.PENDING)
    later = ScheduledReminder(
        "r2", USER, "t-1", "PT5M", NOW + dt.timedelta(hours=1), 1, ReminderState.PENDING
    )

    async with store() as uow:
        await uow.reminders.put(later, NOW)
        await uow.reminders.put(soon, NOW)
    assert store.reminders == {}

    async with store() as uow:
        await uow.reminders.put(later, NOW)
        await uow.reminders.put(soon, NOW)
        await uow.commit()
    async with store() as uow:
        assert await uow.reminders.next_moment() == NOW
        assert await uow.reminders.due(NOW, 10) == [soon]
        assert await uow.reminders.upcoming(USER, NOW + dt.timedelta(days=1), 10) == [soon, later]
        fired = ScheduledReminder("r1", USER, "t-1", "PT1H", NOW, 1, ReminderState.FIRED)
        assert await uow.reminders.transition(fired, ReminderState.PENDING, NOW)
        assert not await uow.reminders.transition(fired, ReminderState.PENDING, NOW)
        await uow.commit()

    assert store.reminders["r1"].state is ReminderState.FIRED


async def test_put_many_replaces_and_adds_reminders_with_the_unit_only_in_a_writing_one() -> None:
    store = MemoryStore()
    first = ScheduledReminder("r1", USER, "t-1", "PT1H", NOW, 1, ReminderState.PENDING)
    async with store() as uow:
        await uow.reminders.put(first, NOW)
        await uow.commit()
    moved = ScheduledReminder(
        "r1", USER, "t-1", "PT1H", NOW + dt.timedelta(hours=2), 2, ReminderState.PENDING
    )
    added = ScheduledReminder("r2", USER, "t-1", "PT5M", NOW, 2, ReminderState.PENDING)

    async with store() as uow:
        await uow.reminders.put_many([moved, added], NOW)
    assert store.reminders == {"r1": first}  # left without commit: nothing

    async with store() as uow:
        await uow.reminders.put_many([moved, added], NOW)
        await uow.commit()
    assert store.reminders == {"r1": moved, "r2": added}
    async with store(read_only=True) as uow:
        with pytest.raises(UnitOfWorkMisuse):
            await uow.reminders.put_many([added], NOW)
