"""Fixtures for transport tests: the MCP server with bearer tokens, served on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastmcp import FastMCP

from dueflow.bootstrap import Runtime
from mcp_server.http_app import Reachable, http_app
from mcp_server.server import TokenUsers, build_server
from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, serving


@pytest.fixture
def token_server(runtime: Runtime) -> FastMCP:
    """The Dueflow MCP server with alice's and bob's bearer tokens and no default user."""
    return build_server(runtime.service, None, TokenUsers({ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}))


@pytest.fixture
async def http_url(token_server: FastMCP) -> AsyncIterator[str]:
    """The streamable HTTP endpoint of `token_server`, in the app `dueflow serve` builds."""
    app = http_app(token_server, "http", "/mcp", Reachable("127.0.0.1"))
    async with serving(app) as base:
        yield f"{base}/mcp"


@pytest.fixture
async def sse_base(token_server: FastMCP) -> AsyncIterator[str]:
    """The base URL of `token_server` over SSE (stream at /sse, posts at /messages/), in the app
    `dueflow serve` builds."""
    app = http_app(token_server, "sse", "/sse", Reachable("127.0.0.1"))
    async with serving(app) as base:
        yield base
