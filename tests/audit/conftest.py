"""Fixtures for the audit log and its history: MCP clients with task_history, the history reader."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastmcp import Client
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.history_sql import SqlHistory
from dueflow.bootstrap import Runtime
from mcp_server.server import build_server


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
