"""The tag index the database keeps, and the transactions of SQLite's driver (sqlite_driver)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.schema import downgrade, upgrade
from domain.adapters.sql import BUSY_TIMEOUT_MS, make_engine
from domain.adapters.unit_of_work import SqlUnitOfWork
from domain.service import ListArguments, NewTask
from dueflow.bootstrap import Runtime
from tests.support.database import rows
from tests.support.waiting import eventually


async def tag_rows(runtime: Runtime, task_id: str) -> set[tuple[str, str]]:
    found = await rows(runtime, "SELECT tag, user_id FROM task_tags WHERE task_id = :t", t=task_id)
    return {(tag, user) for tag, user in found}


async def listed_ids(runtime: Runtime, user: str, tags: list[str]) -> set[str]:
    service = runtime.service
    page = await service.list_tasks(user, service.make_filter(ListArguments(tags=tags)))
    return {task.id for task in page.tasks}


async def test_the_tag_index_follows_a_tasks_tags_through_add_update_and_clear(
    runtime: Runtime,
) -> None:
    service = runtime.service
    task = (await service.add("alice", NewTask(title="tagged", tags=["Home", "calls"]))).task
    assert await tag_rows(runtime, task.id) == {("home", "alice"), ("calls", "alice")}
    assert await listed_ids(runtime, "alice", ["home"]) == {task.id}

    await service.update("alice", task.id, {"tags": ["errands", "calls"]})
    assert await tag_rows(runtime, task.id) == {("errands", "alice"), ("calls", "alice")}
    assert await listed_ids(runtime, "alice", ["home"]) == set()
    assert await listed_ids(runtime, "alice", ["errands", "calls"]) == {task.id}

    await service.update("alice", task.id, {"title": "renamed"})  # tags untouched
    assert await tag_rows(runtime, task.id) == {("errands", "alice"), ("calls", "alice")}

    await service.update("alice", task.id, {"tags": None})
    assert await tag_rows(runtime, task.id) == set()
    assert await listed_ids(runtime, "alice", ["calls"]) == set()


async def test_the_tag_index_is_per_user(runtime: Runtime) -> None:
    service = runtime.service
    mine = (await service.add("alice", NewTask(title="mine", tags=["shared"]))).task
    theirs = (await service.add("bob", NewTask(title="theirs", tags=["shared"]))).task
    assert await listed_ids(runtime, "alice", ["shared"]) == {mine.id}
    assert await listed_ids(runtime, "bob", ["shared"]) == {theirs.id}


async def test_a_refused_write_leaves_no_tag_rows(runtime: Runtime) -> None:
    service = runtime.service
    task = (await service.add("alice", NewTask(title="t", tags=["a"]))).task
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    async with SqlUnitOfWork(sessions) as uow:
        await uow.statements.execute(
            sa.text("UPDATE tasks SET tags = :tags WHERE id = :id"),
            {"tags": '["b", "c"]', "id": task.id},
        )
        # left without commit: everything, the trigger's rows included, rolls back
    assert await tag_rows(runtime, task.id) == {("a", "alice")}


async def test_a_read_only_unit_of_work_on_sqlite_reads_one_snapshot(tmp_path: Path) -> None:
    """The driver sends a read-only BEGIN with the first read: the reads after it still share
    one snapshot, whatever commits in between."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'snapshot.db'}")
    await upgrade(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    count = sa.text("SELECT count(*) FROM leases")
    try:
        async with SqlUnitOfWork(sessions, read_only=True) as reader:
            before = (await reader.statements.execute(count)).scalar_one()
            async with SqlUnitOfWork(sessions) as writer:
                await writer.statements.execute(
                    sa.text(
                        "INSERT INTO leases (name, holder, expires_at)"
                        " VALUES ('x', 'y', '2026-01-01 00:00:00.000000')"
                    )
                )
                await writer.commit()
            during = (await reader.statements.execute(count)).scalar_one()
        async with SqlUnitOfWork(sessions, read_only=True) as later:
            after = (await later.statements.execute(count)).scalar_one()
    finally:
        await engine.dispose()
    assert (before, during, after) == (0, 0, 1)


async def test_the_sqlite_schema_migrates_down_and_up_again(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'both-ways.db'}")
    try:
        await upgrade(engine)
        await downgrade(engine)
        await upgrade(engine)
        async with engine.connect() as conn:
            triggers = await conn.execute(
                sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name")
            )
            names = [name for (name,) in triggers]
    finally:
        await engine.dispose()
    assert names == [
        "audit_log_no_update",
        "task_tags_on_insert",
        "task_tags_on_state",
        "task_tags_on_update",
    ]


async def test_reading_the_reminder_schedule_does_not_wait_for_a_writer(runtime: Runtime) -> None:
    """The reminder timer asks for the next moment between firings: on SQLite, a read that
    queued for the write lock behind a long writer made reminders hundreds of ms late."""
    await runtime.service.add(
        "alice", NewTask(title="t", due="2026-11-24T09:00", reminders=["PT15M"])
    )
    await runtime.relay.drain()  # the reminders worker schedules it
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    async with SqlUnitOfWork(sessions) as writer:
        await writer.statements.execute(sa.text("UPDATE tasks SET title = title"))  # holds the lock
        # the writer holds the lock to the end of this block: a read queued behind it would wait
        # out the whole busy timeout, so half of it tells the two apart on any machine
        async with asyncio.timeout(BUSY_TIMEOUT_MS / 2000):
            moment = await runtime.reminders.next_moment()
            upcoming = await runtime.reminders.upcoming("alice", "P7D")
    assert moment is not None and moment.isoformat() == "2026-11-24T07:45:00+00:00"
    assert [item.task.title for item in upcoming] == ["t"]


async def test_a_writer_that_finds_the_write_lock_taken_waits_without_stopping_the_loop(
    tmp_path: Path,
) -> None:
    """The driver runs a writer's statements on the event loop once it holds the lock; a writer
    that finds the lock taken waits on its connection's thread. Waiting on the loop would stop
    the holder from ever committing (it needs the loop) and fail after the busy timeout."""
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'queue.db'}")
    await upgrade(engine)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    insert = sa.text(
        "INSERT INTO leases (name, holder, expires_at) VALUES (:n, 'y', '2026-01-01 00:00:00')"
    )

    async def second_writer() -> None:
        async with SqlUnitOfWork(sessions) as writer:
            await writer.statements.execute(insert, {"n": "second"})
            await writer.commit()

    ticks = 0
    try:
        async with SqlUnitOfWork(sessions) as holder:
            await holder.statements.execute(insert, {"n": "first"})  # holds the write lock
            waiting = asyncio.create_task(second_writer())
            for _ in range(20):  # the loop turns while the writer waits (nothing shows its wait)
                await asyncio.sleep(0.01)
                ticks += 1
            assert not waiting.done()
            await holder.commit()
        async with asyncio.timeout(5):
            await waiting
        async with engine.connect() as conn:
            names = (await conn.execute(sa.text("SELECT name FROM leases ORDER BY name"))).all()
    finally:
        await engine.dispose()
    assert ticks == 20
    assert [name for (name,) in names] == ["first", "second"]


async def test_a_refused_insert_is_sqlalchemys_integrity_error_and_writes_nothing(
    runtime: Runtime,
) -> None:
    """The task and outbox writes skip SQLAlchemy's execution on SQLite (writes.Write); callers
    (the recurrence worker's one-successor rule, the consumers' inbox) still see its errors."""
    service = runtime.service
    task = (await service.add("alice", NewTask(title="first", tags=["a"]))).task
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    copy = replace(task, title="second", tags=("b",))
    with pytest.raises(IntegrityError):
        async with SqlUnitOfWork(sessions) as uow:
            await uow.tasks.add(copy)  # the same id
            await uow.commit()
    assert await rows(runtime, "SELECT title FROM tasks") == [("first",)]
    assert await tag_rows(runtime, task.id) == {("a", "alice")}
    async with SqlUnitOfWork(sessions) as uow:  # the pool's connection is usable afterwards
        assert (await uow.tasks.get("alice", task.id)) == task


async def test_a_write_after_a_read_on_the_same_connection_is_still_one_transaction(
    runtime: Runtime, database_url: str
) -> None:
    """A reader on PostgreSQL runs without a transaction (autocommit); the connection must be
    transactional again for the next unit of work, or a failed write would leave half of it."""
    engine = make_engine(database_url)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    insert = sa.text(
        "INSERT INTO leases (name, holder, expires_at) VALUES (:n, 'y', '2026-01-01 00:00:00')"
    )
    try:
        async with SqlUnitOfWork(sessions, read_only=True) as reader:
            await reader.statements.execute(sa.text("SELECT count(*) FROM leases"))
        with pytest.raises(IntegrityError):
            async with SqlUnitOfWork(sessions) as writer:
                await writer.statements.execute(insert, {"n": "half"})
                await writer.statements.execute(insert, {"n": "half"})  # the same key: refused
                await writer.commit()
        assert engine.sync_engine.pool.checkedin() == 1  # one connection served both
    finally:
        await engine.dispose()
    assert await rows(runtime, "SELECT name FROM leases WHERE name = 'half'") == []


@pytest.mark.postgres
async def test_a_pooled_connection_the_server_closed_is_replaced(postgres_url: str) -> None:
    """A PostgreSQL restart (or an idle timeout) closes pooled connections under the server:
    the next unit of work must get a fresh one, not an error."""
    engine = make_engine(postgres_url)
    try:
        async with engine.connect() as conn:
            pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            pooled = (await conn.get_raw_connection()).driver_connection
        killer = await asyncpg.connect(postgres_url)
        try:
            await killer.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await killer.close()
        await eventually(pooled.is_closed, what="the client to see the server close its socket")
        sessions = async_sessionmaker(engine, expire_on_commit=False)
        async with SqlUnitOfWork(sessions, read_only=True) as reader:
            pid_now = await reader.statements.execute(sa.text("SELECT pg_backend_pid()"))
            other = pid_now.scalar_one()
    finally:
        await engine.dispose()
    assert other != pid
