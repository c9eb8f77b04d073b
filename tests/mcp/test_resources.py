"""Tasks as MCP resources, and their updates pushed to subscribed sessions of the same user, in
both protocol eras (2025: resources/subscribe; 2026-07-28: subscriptions/listen), through real
MCP clients on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import mcp_types as mt
import pytest
from fastmcp import Client, FastMCP
from fastmcp.client.messages import MessageHandler
from mcp.client.subscriptions import Subscription, listen
from mcp.shared.exceptions import MCPError

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from mcp_server.resource_updates import ResourceWatchers
from mcp_server.server import build_server
from tests.support.tools import add, call
from tests.support.waiting import eventually

AGENDA = "dueflow://agenda"


def task_uri(task_id: str) -> str:
    return f"dueflow://tasks/{task_id}"


async def read(client: Client, uri: str) -> Any:
    [content] = await client.read_resource(uri)
    assert isinstance(content, mt.TextResourceContents) and content.mime_type == "application/json"
    return json.loads(content.text)


class Updates(MessageHandler):
    """The resource URIs a 2025 session was told were updated, in order."""

    def __init__(self) -> None:
        self.uris: list[str] = []

    async def on_resource_updated(self, message: mt.ResourceUpdatedNotification) -> None:
        self.uris.append(str(message.params.uri))


@pytest.fixture
def servers(runtime: Runtime) -> dict[str, FastMCP]:
    """One server per user (stdio's way of naming the user), sharing the process's watchers."""
    watchers = ResourceWatchers()
    return {
        user: build_server(runtime.service, user, reminders=runtime.reminders, watchers=watchers)
        for user in ("alice", "bob")
    }


async def next_updates(subscription: Subscription, count: int) -> list[str]:
    """The next `count` updated URIs of a listen stream."""
    uris: list[str] = []

    async def take() -> None:
        async for event in subscription:
            uris.append(event.uri)  # type: ignore[union-attr]
            if len(uris) == count:
                return

    await asyncio.wait_for(take(), 10)
    return uris


@asynccontextmanager
async def subscribed_2025(server: FastMCP, *uris: str) -> AsyncIterator[tuple[Client, Updates]]:
    updates = Updates()
    async with Client(server, mode="legacy", message_handler=updates) as client:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # removed as of 2026-07-28, and 2025's way
            for uri in uris:
                await client.session.subscribe_resource(uri)
        yield client, updates


async def test_the_server_lists_the_task_template_and_the_agenda(alice: Client) -> None:
    templates = await alice.list_resource_templates()
    assert [t.uri_template for t in templates] == ["dueflow://tasks/{task_id}"]
    assert [str(r.uri) for r in await alice.list_resources()] == [AGENDA]
    capabilities = alice.server_capabilities
    assert capabilities is not None and capabilities.resources is not None
    assert capabilities.resources.subscribe is True


async def test_a_task_resource_is_the_task_get_task_answers_to_its_user_only(
    alice: Client, bob: Client
) -> None:
    task = await add(alice, "Water the plants", due="2026-11-24", tags=["home"])
    assert (
        await read(alice, task_uri(task["id"]))
        == (await call(alice, "get_task", task_id=task["id"]))["task"]
    )
    with pytest.raises(MCPError, match=f"task_id: no task '{task['id']}' for this user"):
        await read(bob, task_uri(task["id"]))
    for forged in ("nope", "a" * 65):
        with pytest.raises(MCPError, match="task_id: "):
            await read(alice, task_uri(forged))
    for hostile in ("x%00y", "..%2F..%2Fetc", "%ZZ"):
        with pytest.raises(MCPError, match=r"task_id: |Unknown resource|Resource not found"):
            await read(alice, task_uri(hostile))


async def test_the_agenda_holds_the_users_overdue_and_todays_open_tasks(
    alice: Client, bob: Client, clock: FixedClock
) -> None:
    # the fixed clock says 2026-11-23 10:00 UTC, 11:00 in Europe/Berlin
    late = await add(alice, "File taxes", clock, due="2026-11-20")
    earlier = await add(alice, "Call Ann", clock, due="2026-11-23T09:00")
    tonight = await add(alice, "Cook", clock, due="2026-11-23T19:00", priority="high")
    today = await add(alice, "Post the letter", clock, due="2026-11-23")
    await add(alice, "Dentist", clock, due="2026-11-24T00:30")
    await add(alice, "Someday", clock)
    done = await add(alice, "Done already", clock, due="2026-11-23")
    await call(alice, "complete_task", task_id=done["id"])
    await add(bob, "Bob's own", clock, due="2026-11-23")

    agenda = await read(alice, AGENDA)

    assert (agenda["date"], agenda["timezone"]) == ("2026-11-23", "Europe/Berlin")
    assert [t["id"] for t in agenda["overdue"]] == [late["id"], earlier["id"]]
    assert [t["id"] for t in agenda["today"]] == [today["id"], tonight["id"]]
    assert agenda["counts"] == {"overdue": 2, "today": 2}
    assert agenda["complete"] is True
    assert agenda["today"][1] == {
        **agenda["today"][1],
        "title": "Cook",
        "priority": "high",
        "overdue": False,
    }
    bobs = await read(bob, AGENDA)
    assert [t["title"] for t in bobs["today"]] == ["Bob's own"] and bobs["overdue"] == []


async def test_a_2026_listener_hears_of_its_users_changes_only(
    servers: dict[str, FastMCP],
) -> None:
    async with (
        Client(servers["alice"]) as watching,
        Client(servers["alice"]) as acting,
        Client(servers["bob"]) as bob,
    ):
        assert watching.protocol_version == "2026-07-28"
        task = await add(acting, "Pay rent")
        bobs = await add(bob, "Bob's rent")
        uris = [task_uri(task["id"]), task_uri(bobs["id"]), AGENDA]
        async with listen(watching.session, resource_subscriptions=uris) as updates:
            await call(bob, "complete_task", task_id=bobs["id"])  # bob's: not for alice
            await call(acting, "list_tasks")  # a read changes nothing
            await call(acting, "update_task", task_id=task["id"], priority="high")
            assert await next_updates(updates, 2) == [task_uri(task["id"]), AGENDA]
            await call(acting, "delete_task", task_id=task["id"])
            assert await next_updates(updates, 2) == [task_uri(task["id"]), AGENDA]


async def test_a_2025_session_hears_of_what_it_subscribed_to_until_it_unsubscribes(
    servers: dict[str, FastMCP],
) -> None:
    async with Client(servers["alice"]) as acting, Client(servers["bob"]) as bob:
        task = await add(acting, "Book flights")
        other = await add(acting, "Renew insurance")
        bobs = await add(bob, "Bob's flights")
        async with subscribed_2025(
            servers["alice"], task_uri(task["id"]), task_uri(bobs["id"])
        ) as (watching, updates):
            assert watching.protocol_version == "2025-11-25"
            await call(bob, "complete_task", task_id=bobs["id"])
            await call(acting, "complete_task", task_id=other["id"])  # not subscribed to
            await call(acting, "complete_task", task_id=task["id"])
            await eventually(lambda: updates.uris, what="the update of the subscribed task")
            assert updates.uris == [task_uri(task["id"])]

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                await watching.session.unsubscribe_resource(task_uri(task["id"]))
                await watching.session.subscribe_resource(AGENDA)
            await call(acting, "reopen_task", task_id=task["id"])
            await eventually(lambda: len(updates.uris) > 1, what="the agenda's update")
            assert updates.uris == [task_uri(task["id"]), AGENDA]
