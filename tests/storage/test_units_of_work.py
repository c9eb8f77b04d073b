"""The kinds of SQL unit of work a use case asks for, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.adapters.sqlite_driver import driver_of
from domain.adapters.unit_of_work import SqlUnitOfWork
from domain.events import EventType, TaskEvent
from domain.model import Task
from domain.ports import IdempotencyRecord, UnitOfWorkMisuse
from domain.service import ListArguments, NewTask
from dueflow.bootstrap import Runtime
from tests.support.database import rows
from tests.support.runtimes import NOW


def _created(task: Task) -> TaskEvent:
    return TaskEvent(
        event_type=EventType.TASK_CREATED,
        task_id=task.id,
        user_id=task.user_id,
        sequence=task.version,
        timestamp=NOW,
        task=task.snapshot(),
        changes={},
        source="test",
    )


def _sessions(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(runtime.engine, expire_on_commit=False)


async def _model(runtime: Runtime) -> Task:
    return (await runtime.service.add("alice", NewTask(title="model", tags=["m"]))).task


def _fresh(task: Task, title: str) -> Task:
    return replace(task, id=str(uuid.uuid4()), title=title, tags=("fresh",))


async def test_an_inserts_only_unit_writes_its_task_and_event_together_at_commit(
    runtime: Runtime,
) -> None:
    added = _fresh(await _model(runtime), "added")
    async with SqlUnitOfWork(_sessions(runtime), inserts_only=True) as uow:
        await uow.tasks.add(added)
        uow.record(_created(added))
        assert await rows(runtime, "SELECT id FROM tasks WHERE id = :t", t=added.id) == []
        await uow.commit()
    assert await rows(runtime, "SELECT title FROM tasks WHERE id = :t", t=added.id) == [("added",)]
    assert await rows(runtime, "SELECT tag FROM task_tags WHERE task_id = :t", t=added.id) == [
        ("fresh",)
    ]
    assert len(await rows(runtime, "SELECT id FROM outbox WHERE task_id = :t", t=added.id)) == 1


@pytest.mark.parametrize("inserts_only", [True, False], ids=["inserts-only", "writing"])
async def test_a_refused_event_takes_its_task_down_with_it(
    runtime: Runtime, inserts_only: bool
) -> None:
    model = await _model(runtime)
    (event_id,) = (await rows(runtime, "SELECT event_id FROM outbox"))[0]
    added = _fresh(model, "never")
    with pytest.raises(IntegrityError):
        async with SqlUnitOfWork(_sessions(runtime), inserts_only=inserts_only) as uow:
            await uow.tasks.add(added)
            uow.record(replace(_created(added), event_id=event_id))  # an event id already used
            await uow.commit()
    assert await rows(runtime, "SELECT title FROM tasks") == [("model",)]
    assert await rows(runtime, "SELECT tag FROM task_tags WHERE task_id = :t", t=added.id) == []
    assert len(await rows(runtime, "SELECT id FROM outbox")) == 1


@pytest.mark.parametrize("inserts_only", [True, False], ids=["inserts-only", "writing"])
async def test_a_unit_left_without_commit_writes_nothing(
    runtime: Runtime, inserts_only: bool
) -> None:
    added = _fresh(await _model(runtime), "never")
    async with SqlUnitOfWork(_sessions(runtime), inserts_only=inserts_only) as uow:
        await uow.tasks.add(added)
        uow.record(_created(added))
    assert await rows(runtime, "SELECT title FROM tasks") == [("model",)]
    assert len(await rows(runtime, "SELECT id FROM outbox")) == 1


async def test_an_inserts_only_unit_refuses_reads_and_updates(runtime: Runtime) -> None:
    model = await _model(runtime)
    where = runtime.service.make_filter(ListArguments())
    async with SqlUnitOfWork(_sessions(runtime), inserts_only=True) as uow:
        with pytest.raises(UnitOfWorkMisuse, match="inserts-only"):
            await uow.tasks.get("alice", model.id)
        with pytest.raises(UnitOfWorkMisuse, match="inserts-only"):
            await uow.tasks.find_idempotency("alice", "key")
        with pytest.raises(UnitOfWorkMisuse, match="inserts-only"):
            await uow.tasks.all_matching("alice", where, NOW, NOW.date())
        with pytest.raises(UnitOfWorkMisuse, match="inserts-only"):
            await uow.tasks.save(replace(model, title="changed", version=2), 1)
        with pytest.raises(UnitOfWorkMisuse, match="inserts-only"):
            await uow.reminders.for_task(model.id)
    assert await rows(runtime, "SELECT title, version FROM tasks") == [("model", 1)]


async def test_a_read_only_unit_refuses_writes_and_commit(runtime: Runtime) -> None:
    model = await _model(runtime)
    async with SqlUnitOfWork(_sessions(runtime), read_only=True) as uow:
        assert await uow.tasks.get("alice", model.id) == model
        with pytest.raises(UnitOfWorkMisuse, match="read-only"):
            await uow.tasks.add(_fresh(model, "never"))
        with pytest.raises(UnitOfWorkMisuse, match="read-only"):
            await uow.tasks.save(replace(model, title="changed", version=2), 1)
        with pytest.raises(UnitOfWorkMisuse, match="read-only"):
            await uow.commit()
    assert await rows(runtime, "SELECT title FROM tasks") == [("model",)]


def test_a_unit_cannot_be_both_read_only_and_inserts_only(runtime: Runtime) -> None:
    with pytest.raises(ValueError, match="at most one"):
        SqlUnitOfWork(_sessions(runtime), read_only=True, inserts_only=True)


async def test_a_writing_unit_runs_its_inserts_at_once(runtime: Runtime) -> None:
    added = _fresh(await _model(runtime), "added")
    async with SqlUnitOfWork(_sessions(runtime)) as uow:
        await uow.tasks.add(added)
        count = sa.text("SELECT count(*) FROM tasks WHERE id = :t")
        assert (await uow.statements.execute(count, {"t": added.id})).scalar_one() == 1
        await uow.tasks.remember_idempotency("alice", "k", IdempotencyRecord("hash", added.id), NOW)
        assert await uow.tasks.find_idempotency("alice", "k") == IdempotencyRecord("hash", added.id)
        uow.record(_created(added))
        await uow.commit()
    assert len(await rows(runtime, "SELECT id FROM outbox WHERE task_id = :t", t=added.id)) == 1


async def test_adds_with_and_without_an_idempotency_key_each_commit_with_their_event(
    runtime: Runtime,
) -> None:
    service = runtime.service
    plain = (await service.add("alice", NewTask(title="plain"))).task
    keyed = (await service.add("alice", NewTask(title="keyed"), idempotency_key="k-1")).task
    again = await service.add("alice", NewTask(title="keyed"), idempotency_key="k-1")
    assert again.task == keyed and not again.created
    events = await rows(runtime, "SELECT task_id, event_type FROM outbox ORDER BY id")
    assert events == [(plain.id, "TASK_CREATED"), (keyed.id, "TASK_CREATED")]
    keys = await rows(runtime, "SELECT key, task_id FROM idempotency_keys")
    assert keys == [("k-1", keyed.id)]


async def test_an_urgent_writer_on_sqlite_gives_up_after_its_patience(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'urgent.db'}")
    await upgrade(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    try:
        async with SqlUnitOfWork(sessions) as holder, engine.connect() as other:
            await holder.statements.execute(sa.text("UPDATE tasks SET title = title"))
            driver = driver_of(await other.get_raw_connection())
            assert driver.try_begin_immediate() is False
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await asyncio.wait_for(driver.begin_urgently(0.05), timeout=1)
            await holder.commit()
            assert driver.try_begin_immediate() is True
            await driver.rollback()
    finally:
        await engine.dispose()


async def test_an_add_without_a_key_is_one_write_and_one_with_a_key_a_transaction(
    runtime: Runtime,
) -> None:
    """The service asks for an inserts-only unit when it has no key to look up: on PostgreSQL
    its commit is one statement outside a transaction block (asyncpg would be in one after a
    BEGIN); on SQLite one call into the driver, with no SQLAlchemy transaction at all."""
    seen: list[tuple[str, bool]] = []
    begins: list[object] = []
    sqlite = runtime.engine.dialect.name == "sqlite"

    def record(conn: Any, _cursor: Any, statement: str, *_rest: Any) -> None:
        driver = conn.connection.driver_connection
        in_transaction = driver.in_transaction if sqlite else driver.is_in_transaction()
        seen.append((statement.split()[0], in_transaction))

    def began(conn: Any) -> None:
        begins.append(conn)

    async def add(title: str, key: str | None) -> Task:
        seen.clear()
        begins.clear()
        new = NewTask(title=title, tags=["a"])
        return (await runtime.service.add("alice", new, idempotency_key=key)).task

    engine = runtime.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    event.listen(engine, "begin", began)
    try:
        plain = await add("plain", None)
        plain_seen, plain_begins = list(seen), len(begins)
        keyed = await add("keyed", "k-1")
        keyed_seen, keyed_begins = list(seen), len(begins)
    finally:
        event.remove(engine, "before_cursor_execute", record)
        event.remove(engine, "begin", began)
    if sqlite:
        assert (plain_seen, plain_begins) == ([], 0)
        assert keyed_begins == 1
    else:
        assert plain_seen == [("WITH", False)]
        # the key's lookup, then the task, key and event inserts in the transaction it began
        assert keyed_seen[1:] == [("INSERT", True)] * 3 and keyed_seen[0][0] == "SELECT"
    for task in (plain, keyed):
        assert await rows(runtime, "SELECT tag FROM task_tags WHERE task_id = :t", t=task.id) == [
            ("a",)
        ]
        assert len(await rows(runtime, "SELECT id FROM outbox WHERE task_id = :t", t=task.id)) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_an_add_that_finds_the_write_lock_taken_waits_without_stopping_the_loop(
    runtime: Runtime,
) -> None:
    """An add's transaction goes to SQLite's driver whole (BEGIN IMMEDIATE, the inserts,
    COMMIT); it too must wait on the connection's thread while another writer holds the lock."""
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    ticks = 0
    async with SqlUnitOfWork(sessions) as holder:
        await holder.statements.execute(
            sa.text("INSERT INTO leases (name, holder, expires_at) VALUES ('l', 'y', '2026-01-01')")
        )
        adding = asyncio.create_task(runtime.service.add("alice", NewTask(title="waits")))
        for _ in range(20):  # the loop turns while the add waits (nothing shows its wait)
            await asyncio.sleep(0.01)
            ticks += 1
        assert not adding.done()
        await holder.commit()
    async with asyncio.timeout(5):
        task = (await adding).task
    assert ticks == 20
    assert await rows(runtime, "SELECT title FROM tasks") == [("waits",)]
    assert len(await rows(runtime, "SELECT id FROM outbox WHERE task_id = :t", t=task.id)) == 1
