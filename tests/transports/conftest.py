"""Fixtures for transport tests: real sockets on loopback, real `dueflow` processes."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import uvicorn
from fastmcp import FastMCP
from starlette.types import ASGIApp

from dueflow.bootstrap import Runtime
from mcp_server.server import TokenUsers, build_server

ALICE_TOKEN = "alice-token-0123456789abcdef"
BOB_TOKEN = "bob-token-0123456789abcdef"
STARTUP_SECONDS = 15.0


def dueflow_command(*args: str) -> list[str]:
    """The installed `dueflow` console script (or the module, if the script is missing)."""
    script = Path(sys.executable).with_name("dueflow")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-m", "dueflow.cli", *args]


def child_env(home: Path, **dueflow: str) -> dict[str, str]:
    """A minimal environment: PATH, an isolated HOME, and the DUEFLOW_* variables given."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), **dueflow}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: ASGIApp) -> AsyncIterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started serving")
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, STARTUP_SECONDS)
        sock.close()


@pytest.fixture
def token_server(runtime: Runtime) -> FastMCP:
    """The Dueflow MCP server with alice's and bob's bearer tokens and no default user."""
    return build_server(runtime.service, None, TokenUsers({ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}))


@pytest.fixture
async def http_url(token_server: FastMCP) -> AsyncIterator[str]:
    """The streamable HTTP endpoint of `token_server`."""
    async with serving(token_server.http_app(path="/mcp")) as base:
        yield f"{base}/mcp"


@pytest.fixture
async def sse_base(token_server: FastMCP) -> AsyncIterator[str]:
    """The base URL of `token_server` over SSE (stream at /sse, posts at /messages/)."""
    async with serving(token_server.http_app(path="/sse", transport="sse")) as base:
        yield base
