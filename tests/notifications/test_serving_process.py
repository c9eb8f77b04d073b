"""The real `dueflow serve` over stdio: a trigger committed to its database reaches the log channel
on stderr (never stdout) and a connected MCP client, through the relay, the embedded bus and the
dispatcher the serving process runs."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastmcp import Client
from fastmcp.client.logging import LogMessage
from fastmcp.client.transports import StdioTransport
from sqlmodel import SQLModel

from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.adapters.tables import OutboxRow
from tests.support.notifications import trigger
from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command
from tests.support.waiting import eventually
from workers.notifications import DELIVERIES

OUTBOX = SQLModel.metadata.tables[OutboxRow.__tablename__]


def database(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'data' / 'dueflow.db'}"


async def commit_trigger(tmp_path: Path, envelope: dict[str, Any]) -> None:
    """Write a trigger to the outbox as the reminders worker's transaction would."""
    (tmp_path / "data").mkdir(exist_ok=True)
    engine = make_engine(database(tmp_path))
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(OUTBOX).values(
                    event_id=envelope["event_id"],
                    event_type=envelope["event_type"],
                    task_id=envelope["task_id"],
                    user_id=envelope["user_id"],
                    sequence=envelope["sequence"],
                    payload=envelope,
                    created_at=dt.datetime.now(dt.UTC),
                )
            )
    finally:
        await engine.dispose()


async def delivery_statuses(tmp_path: Path) -> dict[str, str]:
    engine = make_engine(database(tmp_path))
    try:
        async with engine.connect() as conn:
            found = await conn.execute(sa.select(DELIVERIES.c.channel, DELIVERIES.c.status))
            return {channel: status for channel, status in found.all()}
    finally:
        await engine.dispose()


def env(tmp_path: Path) -> dict[str, str]:
    return child_env(
        tmp_path,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_USER="alice",
        DUEFLOW_RELAY_POLL_SECONDS="0.1",
    )


async def test_the_log_channel_writes_one_line_to_stderr_and_nothing_to_stdout(
    tmp_path: Path,
) -> None:
    envelope = trigger()
    await commit_trigger(tmp_path, envelope)
    proc = await asyncio.create_subprocess_exec(
        *dueflow_command("serve"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env(tmp_path),
        cwd=str(tmp_path),
    )
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not any("dueflow.reminders: reminder {" in line for line in lines):
                lines.append((await proc.stderr.readline()).decode())
                assert lines[-1], "the server exited before logging the reminder"
    finally:
        proc.stdin.close()
        stdout = await proc.stdout.read()
        lines.append((await proc.stderr.read()).decode())
        await asyncio.wait_for(proc.wait(), STARTUP_SECONDS)

    [line] = [line for line in lines if "dueflow.reminders: reminder {" in line]
    assert envelope["event_id"] in line
    assert "Renew the passport" in line
    assert stdout == b""
    statuses = await delivery_statuses(tmp_path)
    assert statuses == {"log": "delivered", "mcp": "skipped"}


async def test_a_stdio_client_of_the_user_receives_a_reminder_committed_while_it_is_connected(
    tmp_path: Path,
) -> None:
    await commit_trigger(tmp_path, trigger(title="Warm-up"))  # migrates the database first
    command, *args = dueflow_command("serve")
    transport = StdioTransport(
        command=command,
        args=args,
        env=env(tmp_path),
        cwd=str(tmp_path),
        keep_alive=False,
        log_file=tmp_path / "stderr.log",
    )
    received: list[LogMessage] = []

    async def inbox(message: LogMessage) -> None:
        received.append(message)

    envelope = trigger(title="Call the dentist")
    async with Client(transport, log_handler=inbox, timeout=STARTUP_SECONDS) as client:
        await client.call_tool("list_tasks", {})
        await commit_trigger(tmp_path, envelope)
        await eventually(
            lambda: any(m.data.get("event_id") == envelope["event_id"] for m in received),
            timeout=STARTUP_SECONDS,
            what="the connected client to receive the reminder",
        )

    [message] = [m for m in received if m.data.get("event_id") == envelope["event_id"]]
    assert (message.level, message.logger) == ("notice", "dueflow.reminders")
    assert message.data["task"]["title"] == "Call the dentist"
    assert "Call the dentist" in (tmp_path / "stderr.log").read_text()
