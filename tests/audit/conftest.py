"""Fixtures for the audit log and its history: MCP clients with task_history, the history reader."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastmcp import Client
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.history import SqlHistory
from dueflow.bootstrap import Runtime
from mcp_server.server import build_server
from tests.conftest import call

TOKEN = "internal-token-0123456789"


@pytest.fixture
def sessions(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(runtime.engine, expire_on_commit=False)


@pytest.fixture
def history(sessions: async_sessionmaker[AsyncSession]) -> SqlHistory:
    return SqlHistory(sessions)


@pytest.fixture
async def alice(runtime: Runtime, history: SqlHistory) -> AsyncIterator[Client]:
    """Alice's MCP session, with task_history reading the database (embedded)."""
    async with Client(build_server(runtime.service, "alice", history=history)) as client:
        yield client


@pytest.fixture
async def bob(runtime: Runtime, history: SqlHistory) -> AsyncIterator[Client]:
    async with Client(build_server(runtime.service, "bob", history=history)) as client:
        yield client


async def refused(client: Client, tool: str, **arguments: Any) -> str:
    """Call a tool that must fail; answer its error text."""
    result = await client.call_tool(tool, arguments, raise_on_error=False)
    assert result.is_error, result.structured_content
    text: str = result.content[0].text  # type: ignore[union-attr]
    return text


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
