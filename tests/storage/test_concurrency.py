"""Races the storage must settle, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.sql import BUSY_TIMEOUT_MS
from domain.adapters.unit_of_work import SqlUnitOfWork
from domain.errors import Conflict
from domain.service import NewTask
from dueflow.bootstrap import Runtime
from tests.support.database import rows


async def test_two_writers_on_one_version_one_wins_and_one_conflicts(runtime: Runtime) -> None:
    service = runtime.service
    task = (await service.add("alice", NewTask(title="shared"))).task
    outcomes = await asyncio.gather(
        service.update("alice", task.id, {"title": "first"}, expected_version=1),
        service.update("alice", task.id, {"title": "second"}, expected_version=1),
        return_exceptions=True,
    )
    conflicts = [o for o in outcomes if isinstance(o, Conflict)]
    assert len(conflicts) == 1, outcomes
    stored = await service.get("alice", task.id)
    assert stored.version == 2 and stored.title in ("first", "second")
    events = await rows(runtime, "SELECT sequence FROM outbox WHERE task_id = :t", t=task.id)
    assert sorted(e[0] for e in events) == [1, 2]


async def test_concurrent_adds_with_one_idempotency_key_create_one_task(runtime: Runtime) -> None:
    service = runtime.service
    new = NewTask(title="once", tags=["a"])
    results = await asyncio.gather(
        *(service.add("alice", new, idempotency_key="race") for _ in range(5))
    )
    assert len({r.task.id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert (await rows(runtime, "SELECT count(*) FROM tasks"))[0][0] == 1
    assert (await rows(runtime, "SELECT count(*) FROM outbox"))[0][0] == 1


async def test_writers_that_name_no_version_all_get_through_in_turn(runtime: Runtime) -> None:
    service = runtime.service
    task = (await service.add("alice", NewTask(title="counter"))).task
    await asyncio.gather(
        *(service.update("alice", task.id, {"tags": [f"t{n}"]}) for n in range(4)),
        service.complete("alice", task.id),
    )
    stored = await service.get("alice", task.id)
    assert stored.status.value == "completed"
    events = await rows(runtime, "SELECT sequence FROM outbox WHERE task_id = :t", t=task.id)
    assert sorted(e[0] for e in events) == list(range(1, stored.version + 1))
    assert stored.version == 6


async def test_an_urgent_writer_waits_for_the_write_lock_and_then_takes_it(
    runtime: Runtime,
) -> None:
    await runtime.service.add("alice", NewTask(title="contended"))  # a row both writers lock
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    holding, release = asyncio.Event(), asyncio.Event()

    async def hold_the_write_lock() -> None:
        async with SqlUnitOfWork(sessions) as uow:
            await uow.statements.execute(sa.text("UPDATE tasks SET title = title"))
            holding.set()
            await release.wait()
            await uow.commit()

    async def urgent_write() -> bool:
        await holding.wait()
        # the holder lets go after a while: nothing shows from outside that the writer queued
        asyncio.get_running_loop().call_later(0.2, release.set)
        async with SqlUnitOfWork(sessions, urgent=True) as uow:
            await uow.statements.execute(sa.text("UPDATE tasks SET title = title"))
            wrote_after_release = release.is_set()
            await uow.commit()
            if runtime.engine.dialect.name == "sqlite":  # its busy timeout is back afterwards
                timeout = await uow.statements.execute(sa.text("PRAGMA busy_timeout"))
                assert timeout.scalar() == BUSY_TIMEOUT_MS
        return wrote_after_release

    _, wrote_after_release = await asyncio.gather(hold_the_write_lock(), urgent_write())
    assert wrote_after_release  # it queued behind the holder instead of failing or writing past it
