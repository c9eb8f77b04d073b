"""The real `dueflow serve` over stdio: a subprocess, an embedded database, a clean stdout."""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command

BERLIN = ZoneInfo("Europe/Berlin")


def stdio_transport(tmp_path: Path) -> StdioTransport:
    command, *args = dueflow_command("serve")
    env = child_env(
        tmp_path,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_USER="alice",
        DUEFLOW_TIMEZONE="Europe/Berlin",
    )
    return StdioTransport(
        command=command,
        args=args,
        env=env,
        cwd=str(tmp_path),
        keep_alive=False,
        log_file=tmp_path / "stderr.log",
    )


def stored_tasks(tmp_path: Path) -> list[tuple[str, str, str]]:
    with closing(sqlite3.connect(tmp_path / "data" / "dueflow.db")) as db:
        return db.execute("SELECT id, user_id, title FROM tasks").fetchall()


async def test_a_stdio_session_adds_lists_and_gets_a_task_as_dueflow_user(tmp_path: Path) -> None:
    async with Client(stdio_transport(tmp_path), timeout=STARTUP_SECONDS) as client:
        added = await client.call_tool(
            "add_task",
            {"title": "Water plants", "due": "2026-12-01T09:00", "priority": "high"},
        )
        listed = await client.call_tool("list_tasks", {})
        task_id = added.structured_content["task"]["id"]
        got = await client.call_tool("get_task", {"task_id": task_id})

    task = added.structured_content["task"]
    assert added.structured_content["created"] is True
    assert task["priority"] == "high"
    assert task["due"]["timezone"] == "Europe/Berlin"
    assert task["due"]["datetime"] == "2026-12-01T09:00:00+01:00"
    assert task["due"]["utc"].startswith("2026-12-01T08:00:00")
    assert [t["id"] for t in listed.structured_content["tasks"]] == [task_id]
    fetched = got.structured_content["task"]
    assert (fetched["id"], fetched["title"], fetched["version"]) == (task_id, "Water plants", 1)
    assert stored_tasks(tmp_path) == [(task_id, "alice", "Water plants")]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_instructions_name_today_in_the_user_s_zone(tmp_path: Path, mode: str) -> None:
    before = dt.datetime.now(BERLIN).date()
    async with Client(stdio_transport(tmp_path), mode=mode, timeout=STARTUP_SECONDS) as client:
        instructions = client.instructions or ""
    after = dt.datetime.now(BERLIN).date()

    assert "Europe/Berlin" in instructions
    assert any(day.isoformat() in instructions for day in {before, after})


async def test_server_info_names_dueflow_and_its_own_version(tmp_path: Path) -> None:
    async with Client(stdio_transport(tmp_path), timeout=STARTUP_SECONDS) as client:
        info = client.server_info

    assert info is not None
    assert (info.name, info.version) == ("dueflow", importlib.metadata.version("dueflow"))


async def read_message(stdout: asyncio.StreamReader, lines: list[bytes]) -> dict[str, Any]:
    """The next stdout line, which must be one JSON-RPC message."""
    line = await asyncio.wait_for(stdout.readline(), STARTUP_SECONDS)
    assert line, "the server closed stdout before answering"
    lines.append(line)
    message: dict[str, Any] = json.loads(line)
    return message


async def test_stdout_carries_only_json_rpc_and_logs_go_to_stderr(tmp_path: Path) -> None:
    env = child_env(
        tmp_path,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_USER="alice",
        DUEFLOW_LOG_LEVEL="DEBUG",
    )
    requests = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "raw-test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "add_task", "arguments": {"title": "Raw call"}},
        },
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_task", "arguments": {"task_id": "missing"}},
        },
    ]
    stderr_path = tmp_path / "stderr.log"
    lines: list[bytes] = []
    with stderr_path.open("wb") as stderr:
        proc = await asyncio.create_subprocess_exec(
            *dueflow_command("serve"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            env=env,
            cwd=tmp_path,
        )
        assert proc.stdin is not None
        assert proc.stdout is not None
        try:
            answers: dict[int, dict[str, Any]] = {}
            for request in requests:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                await proc.stdin.drain()
                if "id" in request:
                    while request["id"] not in answers:
                        message = await read_message(proc.stdout, lines)
                        if "id" in message:
                            answers[message["id"]] = message
            proc.stdin.close()
            rest = await asyncio.wait_for(proc.stdout.read(), STARTUP_SECONDS)
            lines.extend(rest.splitlines(keepends=True))
            returncode = await asyncio.wait_for(proc.wait(), STARTUP_SECONDS)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    assert returncode == 0
    for line in lines:
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0"
        assert ("id" in message and ("result" in message or "error" in message)) or (
            "method" in message
        )
    initialized = answers[1]["result"]
    assert initialized["protocolVersion"] == "2025-11-25"
    assert initialized["serverInfo"]["name"] == "dueflow"
    assert answers[2]["result"]["isError"] is False
    assert answers[2]["result"]["structuredContent"]["task"]["title"] == "Raw call"
    assert answers[3]["result"]["isError"] is True
    logged = stderr_path.read_text()
    assert "serving over stdio" in logged
