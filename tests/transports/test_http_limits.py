"""The HTTP transports' per-user limits and request-size limit: one user's calls over the rate
are refused in the documented style while another user is served; one user's calls beyond those
in flight wait their turn; a body over DUEFLOW_MAX_REQUEST_BYTES answers 413 with a JSON-RPC
error and is never read in full."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from dueflow.bootstrap import Runtime
from mcp_server.fairness import CallLimits
from mcp_server.http_app import Reachable, http_app
from mcp_server.server import TokenUsers, build_server
from tests.support.refusals import REFUSAL
from tests.support.servers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    INITIALIZE,
    bearer,
    dueflow_http,
    free_port,
    serving,
)

NEVER_MATCHES = {"recurrence": "FREQ=HOURLY;BYWEEKNO=1;BYMONTH=6", "due": "2026-12-01T09:00"}


def client(url: str, token: str) -> Client:
    return Client(StreamableHttpTransport(url, headers=bearer(token)))


async def limited_url(runtime: Runtime, limits: CallLimits) -> AsyncIterator[str]:
    server = build_server(
        runtime.service,
        None,
        TokenUsers({ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}),
        limits=limits,
    )
    app = http_app(server, "http", "/mcp", Reachable("127.0.0.1"), max_request_bytes=65_536)
    async with serving(app) as base:
        yield f"{base}/mcp"


@pytest.fixture
async def slow_rate_url(runtime: Runtime) -> AsyncIterator[str]:
    """Two calls at once, then one every 20 s: the third quick call is over the rate."""
    async for url in limited_url(runtime, CallLimits(per_second=0.05, burst=2, in_flight=4)):
        yield url


@pytest.fixture
async def one_at_a_time_url(runtime: Runtime) -> AsyncIterator[str]:
    async for url in limited_url(runtime, CallLimits(per_second=100, burst=100, in_flight=1)):
        yield url


async def test_calls_over_the_rate_are_refused_in_the_documented_style(
    slow_rate_url: str,
) -> None:
    async with client(slow_rate_url, ALICE_TOKEN) as alice:
        first = await alice.call_tool("list_tasks", {}, raise_on_error=False)
        second = await alice.call_tool("list_tasks", {}, raise_on_error=False)
        third = await alice.call_tool("list_tasks", {}, raise_on_error=False)
    assert not first.is_error and not second.is_error
    assert third.is_error
    text = third.content[0].text  # type: ignore[union-attr]
    assert REFUSAL.match(text), text
    assert text.startswith("rate: more than 0.05 calls a second from 'alice'")
    assert "Fix: wait" in text


async def test_one_user_over_the_rate_leaves_another_user_served(slow_rate_url: str) -> None:
    async with client(slow_rate_url, ALICE_TOKEN) as alice:
        for _ in range(3):
            await alice.call_tool("list_tasks", {}, raise_on_error=False)
        refused = await alice.call_tool("list_tasks", {}, raise_on_error=False)
    async with client(slow_rate_url, BOB_TOKEN) as bob:
        served = await bob.call_tool("list_tasks", {}, raise_on_error=False)
    assert refused.is_error
    assert not served.is_error


async def test_a_user_s_calls_beyond_those_in_flight_wait_while_others_are_served(
    one_at_a_time_url: str,
) -> None:
    finished: list[tuple[str, float]] = []

    async def alice_preview(mcp: Client) -> None:
        result = await mcp.call_tool("preview_recurrence", NEVER_MATCHES, raise_on_error=False)
        assert result.is_error  # refused when the search gives up, after about a second
        finished.append(("alice", time.monotonic()))

    async def bob_lists(mcp: Client) -> None:
        await asyncio.sleep(0.3)  # alice's calls are running or waiting
        result = await mcp.call_tool("list_tasks", {}, raise_on_error=False)
        assert not result.is_error
        finished.append(("bob", time.monotonic()))

    alice, bob = client(one_at_a_time_url, ALICE_TOKEN), client(one_at_a_time_url, BOB_TOKEN)
    async with alice, bob:
        began = time.monotonic()
        await asyncio.gather(*(alice_preview(alice) for _ in range(3)), bob_lists(bob))
    alice_done = sorted(moment - began for who, moment in finished if who == "alice")
    bob_done = [moment - began for who, moment in finished if who == "bob"]
    # one at a time: each preview ran its full search after the one before it
    assert alice_done[-1] >= 2.5, alice_done
    assert bob_done[0] < alice_done[-1], (bob_done, alice_done)


async def test_a_body_over_the_limit_answers_413_with_a_json_rpc_error(
    slow_rate_url: str,
) -> None:
    padding = "x" * 70_000
    async with httpx.AsyncClient(timeout=10) as http:
        declared = await http.post(
            slow_rate_url,
            json={**INITIALIZE, "params": {**INITIALIZE["params"], "padding": padding}},
            headers={**bearer(ALICE_TOKEN), "Accept": "application/json, text/event-stream"},
        )

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(10):
                yield b" " * 10_000

        streamed = await http.post(
            slow_rate_url,
            content=chunks(),
            headers={**bearer(ALICE_TOKEN), "Content-Type": "application/json"},
        )
    for response in (declared, streamed):
        assert response.status_code == 413
        error = response.json()
        assert error["id"] is None and error["error"]["code"] == -32600
        assert "DUEFLOW_MAX_REQUEST_BYTES" in error["error"]["message"]


async def test_a_body_within_the_limit_is_served(slow_rate_url: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            slow_rate_url,
            json=INITIALIZE,
            headers={**bearer(ALICE_TOKEN), "Accept": "application/json, text/event-stream"},
        )
    assert response.status_code == 200


async def test_dueflow_serve_reads_its_limits_from_the_settings(tmp_path: Path) -> None:
    async with dueflow_http(
        tmp_path,
        free_port(),
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        DUEFLOW_MAX_REQUEST_BYTES="70000",
        DUEFLOW_CALLS_PER_SECOND="0.01",
        DUEFLOW_CALLS_BURST="1",
    ) as url:
        async with httpx.AsyncClient(timeout=10) as http:
            big = await http.post(
                url,
                content=json.dumps({**INITIALIZE, "padding": "x" * 80_000}),
                headers={**bearer(ALICE_TOKEN), "Content-Type": "application/json"},
            )
            small = await http.post(
                url,
                content=json.dumps({**INITIALIZE, "padding": "x" * 60_000}),
                headers={
                    **bearer(ALICE_TOKEN),
                    "Content-Type": "application/json",
                    "Accept": "application/json, text/event-stream",
                },
            )
        async with client(url, ALICE_TOKEN) as alice:
            first = await alice.call_tool("list_tasks", {}, raise_on_error=False)
            second = await alice.call_tool("list_tasks", {}, raise_on_error=False)
    assert (big.status_code, small.status_code) == (413, 200)
    assert not first.is_error
    assert second.is_error
    assert second.content[0].text.startswith("rate: more than 0.01 calls a second")  # type: ignore[union-attr]
