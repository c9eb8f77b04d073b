"""The HTTP transports charge a call by its cost: the stored characters it reads, the CPU time
of its rule walks, and the event payloads its changes make the relay handle count as more calls
against the user's rate (refused in the documented style, saying how long to wait), while
another user's cheap calls are served; a call just over the rate is held and served instead of
refused. Through a real MCP client, on both databases, and in a real `dueflow serve`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport

from domain.service import NewTask
from dueflow.bootstrap import Runtime
from mcp_server.fairness import CallLimits
from mcp_server.http_app import Reachable, http_app
from mcp_server.server import TokenUsers, build_server
from tests.support.refusals import REFUSAL
from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, bearer, dueflow_http, free_port, serving

NEVER_MATCHES = {"recurrence": "FREQ=HOURLY;BYWEEKNO=1;BYMONTH=6", "due": "2026-12-01T09:00"}
LONG = "d" * 10_000


def client(url: str, token: str) -> Client:
    return Client(StreamableHttpTransport(url, headers=bearer(token)))


async def served_with(runtime: Runtime, limits: CallLimits) -> AsyncIterator[str]:
    server = build_server(
        runtime.service, None, TokenUsers({ALICE_TOKEN: "alice", BOB_TOKEN: "bob"}), limits=limits
    )
    app = http_app(server, "http", "/mcp", Reachable("127.0.0.1"), max_request_bytes=65_536)
    async with serving(app) as base:
        yield f"{base}/mcp"


@pytest.fixture
async def costly_url(runtime: Runtime) -> AsyncIterator[str]:
    """Four calls at once, then one every 20 s; 4,096 characters read count as a call."""
    limits = CallLimits(per_second=0.05, burst=4, characters_per_call=4_096, hold_seconds=0.1)
    async for url in served_with(runtime, limits):
        yield url


async def test_a_call_that_reads_many_characters_counts_as_as_many_calls(
    runtime: Runtime, costly_url: str
) -> None:
    for n in range(3):  # some 30,000 characters to read back: about 7 calls' worth
        await runtime.service.add("alice", NewTask(title=f"long {n}", description=LONG))
    async with client(costly_url, ALICE_TOKEN) as alice, client(costly_url, BOB_TOKEN) as bob:
        listed = await alice.call_tool("list_tasks", {}, raise_on_error=False)
        after = await alice.call_tool("list_tasks", {}, raise_on_error=False)
        # bob's calls read nothing much: each counts as one, and his bucket is his own
        bobs = [await bob.call_tool("list_tasks", {}, raise_on_error=False) for _ in range(3)]
    assert not listed.is_error
    assert after.is_error
    text = after.content[0].text  # type: ignore[union-attr]
    assert REFUSAL.match(text), text
    assert text.startswith("rate: more than 0.05 calls a second from 'alice'")
    assert "one more per 4,096 characters it reads" in text
    wait = float(text.split("Fix: wait ")[1].split(" s ")[0])
    assert wait > 3 / 0.05  # in debt by some of the 7 calls' worth, refilled at 0.05 a second
    assert not any(result.is_error for result in bobs)


async def test_a_call_that_reads_little_counts_as_one(runtime: Runtime, costly_url: str) -> None:
    await runtime.service.add("alice", NewTask(title="short"))
    async with client(costly_url, ALICE_TOKEN) as alice:
        results = [await alice.call_tool("list_tasks", {}, raise_on_error=False) for _ in range(5)]
    assert [result.is_error for result in results] == [False] * 4 + [True]


@pytest.fixture
async def walk_costly_url(runtime: Runtime) -> AsyncIterator[str]:
    """Ten calls at once, then one every 20 s; 20 ms of rule walking counts as a call."""
    limits = CallLimits(per_second=0.05, burst=10, hold_seconds=0.1)
    async for url in served_with(runtime, limits):
        yield url


async def test_a_rule_walk_counts_its_cpu_time_as_calls(walk_costly_url: str) -> None:
    async with client(walk_costly_url, ALICE_TOKEN) as alice:
        # a good rule walks for a moment: one call
        good = await alice.call_tool(
            "preview_recurrence", {"recurrence": "FREQ=DAILY", "due": "2026-12-01T09:00"}
        )
        calm = await alice.call_tool("list_tasks", {}, raise_on_error=False)
        # a rule that never matches walks for a second of CPU time before it is refused
        never = await alice.call_tool("preview_recurrence", NEVER_MATCHES, raise_on_error=False)
        after = await alice.call_tool("list_tasks", {}, raise_on_error=False)
    assert not good.is_error and not calm.is_error
    assert never.is_error and "recurrence" in never.content[0].text  # type: ignore[union-attr]
    assert after.is_error
    text = after.content[0].text  # type: ignore[union-attr]
    assert REFUSAL.match(text) and text.startswith("rate:"), text
    assert "per 20 ms of rule walking" in text


@pytest.fixture
async def held_url(runtime: Runtime) -> AsyncIterator[str]:
    """One call at once, then one every 0.2 s; a call over the rate waits up to a second."""
    async for url in served_with(runtime, CallLimits(per_second=5, burst=1, hold_seconds=1.0)):
        yield url


async def test_a_call_the_rate_allows_within_the_hold_is_served_not_refused(held_url: str) -> None:
    async with client(held_url, ALICE_TOKEN) as alice:
        results = [await alice.call_tool("list_tasks", {}, raise_on_error=False) for _ in range(3)]
    assert not any(result.is_error for result in results), [r.content for r in results]


async def test_dueflow_serve_charges_a_user_for_the_events_their_changes_cause(
    tmp_path: Path,
) -> None:
    async with (
        dueflow_http(
            tmp_path,
            free_port(),
            DUEFLOW_DATA_DIR=str(tmp_path / "data"),
            DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob",
            DUEFLOW_CALLS_PER_SECOND="0.05",
            DUEFLOW_CALLS_BURST="10",
            DUEFLOW_CALL_CHARACTERS="1024",
        ) as url,
        client(url, ALICE_TOKEN) as alice,
        client(url, BOB_TOKEN) as bob,
    ):
        # one TASK_CREATED and three REMINDER_SCHEDULED events, each carrying the task:
        # some 40,000 characters of payload for the relay, charged to alice
        added = await alice.call_tool(
            "add_task",
            {
                "title": "long",
                "description": LONG,
                "due": "2027-01-10T09:00",
                "reminders": ["PT1H", "PT2H", "PT3H"],
            },
        )
        # embedded, this read delivers alice's own events first: the relay handles them
        listed = await alice.call_tool("list_reminders", {}, raise_on_error=False)
        after = await alice.call_tool("list_tasks", {}, raise_on_error=False)
        bobs = await bob.call_tool("list_tasks", {}, raise_on_error=False)
    assert not added.is_error and not listed.is_error
    assert after.is_error
    text = after.content[0].text  # type: ignore[union-attr]
    assert REFUSAL.match(text), text
    assert text.startswith("rate: more than 0.05 calls a second from 'alice'")
    assert "one more per 1,024 characters it reads or its changes' events carry" in text
    assert not bobs.is_error
