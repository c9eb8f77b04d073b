"""A write that waits its whole busy timeout for SQLite's writer queue (another process holds the
database for longer) is refused in the documented style and writes nothing; it is not an
internal error (#14). The embedded runtime on a SQLite file, through a real MCP client."""

from __future__ import annotations

import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client

from domain.adapters.sqlite_writer_queue import SUFFIX
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.database import scalar
from tests.support.refusals import REFUSAL
from tests.support.runtimes import NOW, embedded_runtime
from tests.support.tools import call, server_for


@pytest.fixture
async def sqlite_runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Runtime]:
    # a short busy timeout, read by every connection the runtime opens
    monkeypatch.setattr("domain.adapters.sql.BUSY_TIMEOUT_MS", 300)
    url = f"sqlite+aiosqlite:///{tmp_path / 'dueflow.db'}"
    wired = await embedded_runtime(url, tmp_path, FixedClock(NOW))
    yield wired
    await wired.close()


async def test_a_write_that_waits_out_its_turn_is_refused_as_busy_and_writes_nothing(
    sqlite_runtime: Runtime, tmp_path: Path
) -> None:
    async with Client(server_for(sqlite_runtime, "alice")) as alice:
        await call(alice, "add_task", title="before")
        # another process's writer holds its turn for longer than the busy timeout
        held = os.open(str(tmp_path / "dueflow.db") + SUFFIX, os.O_RDWR | os.O_CREAT)
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            result = await alice.call_tool("add_task", {"title": "during"}, raise_on_error=False)
        finally:
            os.close(held)
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error
        match = REFUSAL.match(text)
        assert match is not None and match["field"] == "database", text
        assert "retry" in text and "internal error" not in text
        assert (
            await scalar(sqlite_runtime, "SELECT count(*) FROM tasks WHERE title = 'during'") == 0
        )
        # and once the other writer is done, the same call goes through
        await call(alice, "add_task", title="after")
    assert await scalar(sqlite_runtime, "SELECT count(*) FROM tasks") == 2
