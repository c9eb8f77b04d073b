"""The queue SQLite's writers wait in (a flock beside the database): one turn at a time across
open files, handed on when given back, never left held by a writer that stopped waiting."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.sql import make_engine
from domain.adapters.sqlite_writer_queue import SUFFIX, WriterQueue
from domain.adapters.unit_of_work import SqlUnitOfWork
from tests.support.waiting import eventually


async def on_a_thread(call: Callable[[], None]) -> None:
    await asyncio.to_thread(call)


def queue_of(tmp_path: Path) -> WriterQueue:
    return WriterQueue(str(tmp_path / f"dueflow.db{SUFFIX}"))


def free(queue: WriterQueue) -> bool:
    """Whether nobody holds a turn now (taking one and giving it back at once)."""
    turn = queue.try_turn()
    if turn is None:
        return False
    turn.release()
    return True


async def test_one_turn_at_a_time_and_the_next_waiter_gets_it_when_given_back(
    tmp_path: Path,
) -> None:
    queue = queue_of(tmp_path)
    held = queue.try_turn()
    assert held is not None
    assert queue.try_turn() is None  # another open file of the same lock: excluded
    waiting = asyncio.create_task(queue.turn(5.0, on_a_thread))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    held.release()
    turn = await asyncio.wait_for(waiting, 5.0)
    assert not free(queue)
    turn.release()
    turn.release()  # twice is harmless
    assert free(queue)


async def test_a_waiter_that_times_out_is_refused_as_locked_and_leaves_no_turn_held(
    tmp_path: Path,
) -> None:
    queue = queue_of(tmp_path)
    held = queue.try_turn()
    assert held is not None
    with pytest.raises(sqlite3.OperationalError, match="database is locked"):
        await queue.turn(0.05, on_a_thread)
    held.release()
    # the abandoned wait gets the turn on its thread and gives it back at once
    await eventually(lambda: free(queue), what="the abandoned turn to be given back")


async def test_a_cancelled_waiter_leaves_no_turn_held(tmp_path: Path) -> None:
    queue = queue_of(tmp_path)
    held = queue.try_turn()
    assert held is not None
    waiting = asyncio.create_task(queue.turn(5.0, on_a_thread))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    held.release()
    await eventually(lambda: free(queue), what="the cancelled waiter's turn to be given back")


def test_an_in_memory_database_has_no_queue() -> None:
    with closing(sqlite3.connect(":memory:")) as memory:
        assert WriterQueue.beside(memory) is None


async def test_a_requests_write_transaction_holds_a_turn_until_it_commits_or_rolls_back(
    tmp_path: Path,
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'dueflow.db'}")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    queue = queue_of(tmp_path)
    try:
        async with SqlUnitOfWork(sessions) as uow:
            await uow.statements.execute(sa.text("CREATE TABLE t (n INTEGER)"))
            assert not free(queue)
            await uow.commit()
        assert free(queue)
        async with SqlUnitOfWork(sessions) as uow:
            await uow.statements.execute(sa.text("INSERT INTO t VALUES (1)"))
            assert not free(queue)
        assert free(queue)  # left without commit: rolled back, turn given back
        async with SqlUnitOfWork(sessions, read_only=True) as uow:
            assert (await uow.statements.execute(sa.text("SELECT count(*) FROM t"))).scalar() == 0
            assert free(queue)  # a reader takes no turn
        async with sessions() as session, session.begin():
            await session.execute(sa.text("INSERT INTO t VALUES (2)"))
            assert free(queue)  # nor does a background writer: it gives way to requests
    finally:
        await engine.dispose()
