"""The API app's probe routes: alive while the process answers, ready only while the database
answers. (test_chart_processes shows them answering a kubelet's request, with no bearer token,
on the process the chart starts.)"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastmcp import FastMCP
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.adapters.sql import make_engine
from mcp_server.health import mount_health
from tests.support.servers import free_port


async def probed(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    server = FastMCP("probes")
    mount_health(server, engine)
    transport = httpx.ASGITransport(app=server.http_app(path="/mcp"))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client
    await engine.dispose()


@pytest.fixture
async def reachable(tmp_path: object) -> AsyncIterator[httpx.AsyncClient]:
    async for client in probed(make_engine(f"sqlite+aiosqlite:///{tmp_path}/probe.db")):
        yield client


@pytest.fixture
async def unreachable() -> AsyncIterator[httpx.AsyncClient]:
    url = f"postgresql://nobody@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    async for client in probed(make_engine(url)):
        yield client


async def test_the_api_is_alive_and_ready_while_its_database_answers(
    reachable: httpx.AsyncClient,
) -> None:
    alive, ready = await reachable.get("/healthz"), await reachable.get("/readyz")

    assert (alive.status_code, alive.json()) == (200, {"status": "alive"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_the_api_is_alive_but_not_ready_without_its_database(
    unreachable: httpx.AsyncClient,
) -> None:
    alive, ready = await unreachable.get("/healthz"), await unreachable.get("/readyz")

    assert alive.status_code == 200
    assert (ready.status_code, ready.json()) == (503, {"status": "database unreachable"})
