"""Calling Dueflow's MCP tools through a real client."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastmcp import Client, FastMCP

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from mcp_server.server import build_server


def server_for(runtime: Runtime, user: str) -> FastMCP:
    """The MCP server of `runtime` acting as `user` (the stdio way: no token)."""
    return build_server(
        runtime.service,
        user,
        reminders=runtime.reminders,
        history=runtime.history,
        calendar=runtime.calendar,
    )


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    """Call a tool that must succeed; answer its structured content (its text is there too)."""
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    assert result.content[0].text  # type: ignore[union-attr]
    return result.structured_content


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; answer its error text."""
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


async def add(
    client: Client, title: str = "Buy milk", clock: FixedClock | None = None, **fields: Any
) -> dict[str, Any]:
    """Add a task; with a clock, a second later than the one before (creation order is by time)."""
    if clock is not None:
        clock.advance(dt.timedelta(seconds=1))
    task: dict[str, Any] = (await call(client, "add_task", title=title, **fields))["task"]
    return task


async def history_of(client: Client, **arguments: Any) -> list[dict[str, Any]]:
    """Every entry task_history answers, following next_cursor to the end."""
    entries: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await call(client, "task_history", **arguments, cursor=cursor)
        entries += page["entries"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries


def diffs(entry: dict[str, Any]) -> dict[str, list[Any]]:
    """An entry's changes as {field: [old, new]}."""
    return {change["field"]: [change["old"], change["new"]] for change in entry["changes"]}
