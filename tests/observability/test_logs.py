"""Logs (#18): one format on stderr — readable text by default, one JSON object per line with
DUEFLOW_LOG_FORMAT=json — one line per tool call naming its outcome and correlation id, the
libraries' records in the same format, and none of fastmcp's own notes about refused calls.
`dueflow serve` over stdio runs as its own process; stdout stays JSON-RPC only."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.support.realtime import socket_url, ticket
from tests.support.servers import (
    ALICE_TOKEN,
    STARTUP_SECONDS,
    child_env,
    dueflow_command,
    dueflow_http,
    free_port,
    run_dueflow,
)

TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")


def stdio(home: Path, **env: str) -> StdioTransport:
    command, *args = dueflow_command("serve")
    return StdioTransport(
        command=command,
        args=args,
        env=child_env(home, DUEFLOW_DATA_DIR=str(home / "data"), DUEFLOW_USER="alice", **env),
        cwd=str(home),
        keep_alive=False,
        log_file=home / "stderr.log",
    )


async def some_calls(client: Client[Any]) -> str:
    """An answered write, a schema refusal, a domain refusal; the id of the task added."""
    added = await client.call_tool("add_task", {"title": "logged"})
    await client.call_tool("add_task", {"title": 5}, raise_on_error=False)
    await client.call_tool("get_task", {"task_id": "nope"}, raise_on_error=False)
    task_id: str = added.structured_content["task"]["id"]
    return task_id


async def test_json_logs_are_one_object_per_line_with_a_line_per_call_and_its_correlation_id(
    tmp_path: Path,
) -> None:
    async with Client(stdio(tmp_path, DUEFLOW_LOG_FORMAT="json"), timeout=STARTUP_SECONDS) as c:
        task_id = await some_calls(c)
        history = await c.call_tool("task_history", {"task_id": task_id})
    text = (tmp_path / "stderr.log").read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    calls = [line for line in lines if line["logger"] == "dueflow.mcp.calls"]
    outcomes = [re.sub(r" in [\d.]+ ms$", "", line["message"]) for line in calls]
    assert outcomes == [
        "add_task: ok",
        "add_task: refused",
        "get_task: refused",
        "task_history: ok",
    ]
    created = history.structured_content["entries"][0]
    assert calls[0]["correlation_id"] == created["correlation_id"]
    assert any(line["logger"].startswith("alembic") for line in lines)  # libraries' too
    assert "Invalid arguments" not in text and "Error calling tool" not in text


async def test_text_logs_are_one_readable_line_per_record_without_fastmcp_s_own_notes(
    tmp_path: Path,
) -> None:
    async with Client(stdio(tmp_path), timeout=STARTUP_SECONDS) as client:
        await some_calls(client)
    lines = (tmp_path / "stderr.log").read_text().splitlines()
    assert lines and all(TEXT_LINE.match(line) for line in lines), lines[:5]
    assert any(
        re.search(r"dueflow\.mcp\.calls: add_task: ok in .* correlation_id=", line)
        for line in lines
    ), lines
    assert not any("Invalid arguments" in line or "setup plugin" in line for line in lines)


def test_an_unknown_log_format_is_refused_at_start_naming_the_variable(tmp_path: Path) -> None:
    done = run_dueflow(tmp_path, "db", "current", DUEFLOW_LOG_FORMAT="xml")
    assert done.returncode == 2
    assert "DUEFLOW_LOG_FORMAT" in done.stderr and "json" in done.stderr


async def test_a_realtime_ticket_in_a_request_line_is_masked_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    port = free_port()
    async with dueflow_http(
        tmp_path,
        port,
        log,
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
    ):
        base = f"http://127.0.0.1:{port}"
        # a client that still puts its ticket in the URL is refused (docs/realtime.md); the
        # request line it sent must not carry the ticket into the log either
        spent = await ticket(base, ALICE_TOKEN)
        url = socket_url(base) + f"?ticket={spent}"
        async with connect(url, subprotocols=[Subprotocol("dueflow.v1")]) as socket:
            with pytest.raises(ConnectionClosed):
                await socket.recv()  # closed: the request line is logged by now
    text = log.read_text()
    assert spent not in text and spent[4:20] not in text
    assert "ticket=dft_(masked)" in text, text[-2000:]
