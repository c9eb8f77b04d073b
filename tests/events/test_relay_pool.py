"""On PostgreSQL the relay draws connections from a pool of its own: with every connection of
the requests' pool taken, a pass still delivers (a live view waits on it)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from domain.clock import FixedClock
from domain.service import NewTask
from tests.support.database import scalar, truncate
from tests.support.runtimes import embedded_runtime

# SQLAlchemy's default pool: 5 connections and 10 more on demand
REQUESTS_POOL = 15


@pytest.mark.postgres
async def test_a_pass_delivers_while_every_connection_of_the_requests_pool_is_taken(
    postgres_url: str, clock: FixedClock, tmp_path: Path
) -> None:
    await truncate(postgres_url)
    runtime = await embedded_runtime(postgres_url, tmp_path, clock)
    try:
        await runtime.service.add("alice", NewTask(title="delivered all the same"))
        async with contextlib.AsyncExitStack() as held:
            for _ in range(REQUESTS_POOL):
                await held.enter_async_context(runtime.engine.connect())
            with pytest.raises(TimeoutError):  # the requests' pool is exhausted indeed
                await asyncio.wait_for(runtime.engine.connect().__aenter__(), 0.5)
            delivered = await asyncio.wait_for(runtime.relay.deliver_now(), 10)
        assert delivered == 1
        assert await scalar(runtime, "SELECT count(*) FROM audit_log") == 1
    finally:
        await runtime.close()
