"""Several `dueflow serve` processes writing to one SQLite file at once, as a user's machine
runs one per client: every add lands once, none is refused for a locked database, and every
event is published once and applied once."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command, run_dueflow
from tests.support.waiting import eventually

PROCESSES = 4
ADDS = 25


def query(database: Path, sql: str) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(database)) as db:
        return db.execute(sql).fetchall()


def server(tmp_path: Path, url: str, user: str) -> StdioTransport:
    command, *args = dueflow_command("serve")
    env = child_env(
        tmp_path,
        DUEFLOW_DATABASE_URL=url,
        DUEFLOW_USER=user,
        DUEFLOW_RELAY_POLL_SECONDS="0.2",  # the rows other processes commit
    )
    return StdioTransport(
        command=command,
        args=args,
        env=env,
        cwd=str(tmp_path),
        keep_alive=False,
        log_file=tmp_path / f"{user}.log",
    )


async def test_processes_adding_at_once_to_one_file_lose_nothing_and_publish_each_event_once(
    tmp_path: Path,
) -> None:
    database = tmp_path / "shared.db"
    url = f"sqlite:///{database}"
    migrated = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATABASE_URL=url)
    assert migrated.returncode == 0, migrated.stderr
    clients = [
        Client(server(tmp_path, url, f"writer-{n}"), timeout=STARTUP_SECONDS)
        for n in range(PROCESSES)
    ]

    async def add_all(client: Client, writer: int) -> list[str]:
        refusals = []
        for n in range(ADDS):
            result = await client.call_tool_mcp("add_task", {"title": f"w{writer} t{n}"})
            if result.is_error:
                refusals.append(str(result.content))
        return refusals

    for client in clients:
        await client.__aenter__()
    try:
        refusals = await asyncio.gather(*(add_all(c, n) for n, c in enumerate(clients)))
        assert [r for found in refusals for r in found] == []  # no "database is locked"

        def delivered() -> bool:
            (undelivered,) = query(
                database, "SELECT count(*) FROM outbox WHERE published_at IS NULL"
            )
            return undelivered == (0,)

        await eventually(delivered, what="every relay to deliver", timeout=60)
    finally:
        for client in clients:
            await client.__aexit__(None, None, None)

    total = PROCESSES * ADDS
    assert query(database, "SELECT count(*), count(DISTINCT title) FROM tasks") == [(total, total)]
    events = query(
        database,
        "SELECT count(*), count(DISTINCT event_id), count(DISTINCT task_id), min(attempts),"
        " max(attempts) FROM outbox WHERE event_type = 'TASK_CREATED'",
    )
    # one event per add, each published by one relay (a second publish would count an attempt)
    assert events == [(total, total, total, 1, 1)]
    assert query(database, "SELECT count(*) FROM outbox") == [(total,)]
    applied = query(
        database,
        "SELECT consumer, count(*), count(DISTINCT event_id) FROM processed_events"
        " GROUP BY consumer",
    )
    assert applied and all(row[1:] == (total, total) for row in applied), applied
    assert query(database, "SELECT count(*) FROM audit_log") == [(total,)]
