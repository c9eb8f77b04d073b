"""Resource updates for changes no tool call of the session's server made: the recurrence
worker's next occurrence (in-process), and changes another process writes to the same database,
driven from the realtime feed; through real MCP clients in both protocol eras, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client, FastMCP
from mcp.client.subscriptions import listen

from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime
from dueflow.resource_feed import feed_resource_updates
from mcp_server.resource_updates import ResourceWatchers
from mcp_server.server import build_server
from tests.mcp.test_resources import AGENDA, next_updates, read, subscribed_2025, task_uri
from tests.support.runtimes import embedded_runtime
from tests.support.tools import add, call
from tests.support.waiting import eventually


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[dict[str, FastMCP]]:
    """One server per user sharing the process's watchers, fed from the feed as `dueflow
    serve` feeds them."""
    watchers = ResourceWatchers()
    async with feed_resource_updates(runtime, watchers):
        yield {
            user: build_server(
                runtime.service, user, reminders=runtime.reminders, watchers=watchers
            )
            for user in ("alice", "bob")
        }


@pytest.fixture
async def other_process(
    runtime: Runtime, database_url: str, clock: FixedClock, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """Another server's runtime on the same database: its own relay, workers and feed taps."""
    other = await embedded_runtime(database_url, tmp_path / "other", clock)
    try:
        yield other
    finally:
        await other.close()


async def test_the_recurrence_workers_next_occurrence_is_pushed_in_both_eras(
    runtime: Runtime, served: dict[str, FastMCP], clock: FixedClock
) -> None:
    async with Client(served["alice"]) as acting:
        # yesterday's, so its next occurrence is due today: on the agenda
        task = await add(acting, "Water plants", clock, due="2026-11-22", recurrence="FREQ=DAILY")
        await runtime.relay.drain()
        async with (
            subscribed_2025(served["alice"], task_uri(task["id"]), AGENDA) as (_, updates),
            Client(served["alice"]) as modern,
            listen(modern.session, resource_subscriptions=[AGENDA]) as stream,
        ):
            await call(acting, "complete_task", task_id=task["id"])
            # the tool call's own push, before its answer
            assert await next_updates(stream, 1) == [AGENDA]
            await eventually(lambda: len(updates.uris) >= 2, what="the tool call's pushes")
            assert updates.uris == [task_uri(task["id"]), AGENDA]
            # the recurrence worker makes the next occurrence when the relay delivers the
            # completion: no tool call reports it, the feed does
            await runtime.relay.drain()
            assert await next_updates(stream, 1) == [AGENDA]
            await eventually(lambda: len(updates.uris) >= 3, what="the next occurrence's push")
            agenda = await read(acting, AGENDA)
            assert agenda["overdue"] == []
            [following] = [t for t in agenda["today"] if t["title"] == "Water plants"]
            assert following["id"] != task["id"]
            assert AGENDA in updates.uris[2:]


async def test_a_change_another_process_writes_is_pushed_to_its_users_sessions_only(
    served: dict[str, FastMCP], other_process: Runtime, clock: FixedClock
) -> None:
    async with Client(served["alice"]) as acting:
        task = await add(acting, "Book flights", clock, due="2026-11-23")
        async with (
            subscribed_2025(served["alice"], task_uri(task["id"]), AGENDA) as (_, updates),
            Client(served["alice"]) as modern,
            listen(modern.session, resource_subscriptions=[task_uri(task["id"])]) as stream,
            Client(served["bob"]) as bob,
            subscribed_2025(served["bob"], AGENDA) as (_, bobs_updates),
        ):
            await asyncio.sleep(0)
            # another server on the same database: its relay, its workers, its feed rows
            await other_process.service.update("alice", task["id"], {"title": "Book the flights"})
            await other_process.relay.drain()
            assert await next_updates(stream, 1) == [task_uri(task["id"])]
            await eventually(lambda: len(updates.uris) >= 2, what="the other process's change")
            assert updates.uris == [task_uri(task["id"]), AGENDA]
            assert (await read(acting, task_uri(task["id"])))["title"] == "Book the flights"
            # a change of bob's made elsewhere reaches bob, never alice
            await other_process.service.add("bob", NewTask(title="Bob's, elsewhere"))
            await other_process.relay.drain()
            await eventually(lambda: bobs_updates.uris, what="bob's push")
            assert bobs_updates.uris == [AGENDA]
            assert await call(bob, "list_tasks")
            assert updates.uris == [task_uri(task["id"]), AGENDA]


async def test_the_agenda_is_pushed_when_a_due_passes_and_when_the_day_turns_in_both_eras(
    runtime: Runtime, served: dict[str, FastMCP], clock: FixedClock
) -> None:
    # 11:00 in Berlin (the runtime's zone); a call at 13:00 today
    due = await runtime.service.add("alice", NewTask(title="Call", due="2026-11-23T13:00"))
    async with (
        subscribed_2025(served["alice"], AGENDA) as (acting, updates),
        Client(served["alice"]) as modern,
        listen(modern.session, resource_subscriptions=[AGENDA]) as stream,
        subscribed_2025(served["bob"], AGENDA) as (_, bobs_updates),
    ):
        assert (await read(acting, AGENDA))["overdue"] == []
        clock.set(dt.datetime(2026, 11, 23, 12, 0, 1, tzinfo=dt.UTC))  # 13:00:01 in Berlin
        assert await next_updates(stream, 1) == [AGENDA]
        await eventually(lambda: updates.uris, what="the due's push")
        assert updates.uris == [AGENDA]
        [overdue] = (await read(acting, AGENDA))["overdue"]
        assert overdue["id"] == due.task.id
        await asyncio.sleep(0.05)
        assert bobs_updates.uris == []  # nothing of bob's passed

        clock.set(dt.datetime(2026, 11, 23, 23, 0, 1, tzinfo=dt.UTC))  # Berlin's midnight
        assert await next_updates(stream, 1) == [AGENDA]
        await eventually(lambda: len(updates.uris) == 2, what="the day's push")
        await eventually(lambda: bobs_updates.uris == [AGENDA], what="bob's day")
        assert (await read(acting, AGENDA))["date"] == "2026-11-24"
