"""Resource updates over streamable HTTP, from `dueflow serve --transport http` as its own
process: each token's user hears of its own changes only, in both protocol eras (a 2025 session
on its standalone GET stream, a 2026-07-28 session on its subscriptions/listen response)."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import mcp_types as mt
from fastmcp import Client
from fastmcp.client.messages import MessageHandler
from mcp.client.subscriptions import ResourceUpdated, listen

from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, dueflow_http, free_port
from tests.support.tools import add, call
from tests.support.waiting import eventually


class Updates(MessageHandler):
    def __init__(self) -> None:
        self.uris: list[str] = []

    async def on_resource_updated(self, message: mt.ResourceUpdatedNotification) -> None:
        self.uris.append(str(message.params.uri))


async def test_each_token_hears_of_its_own_users_changes_in_both_eras(tmp_path: Path) -> None:
    tokens = f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob"
    updates = Updates()
    async with (
        dueflow_http(tmp_path, free_port(), DUEFLOW_TOKENS=tokens) as url,
        Client(url, auth=ALICE_TOKEN) as modern,
        Client(url, auth=ALICE_TOKEN, mode="legacy", message_handler=updates) as legacy,
        Client(url, auth=BOB_TOKEN) as bob,
    ):
        assert (modern.protocol_version, legacy.protocol_version) == ("2026-07-28", "2025-11-25")
        mine = await add(modern, "Pay the rent")
        bobs = await add(bob, "Bob's rent")
        uris = [f"dueflow://tasks/{mine['id']}", f"dueflow://tasks/{bobs['id']}"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resources/subscribe is the 2025 way
            for uri in uris:
                await legacy.session.subscribe_resource(uri)
        async with listen(modern.session, resource_subscriptions=uris) as stream:
            await call(bob, "complete_task", task_id=bobs["id"])
            await call(legacy, "complete_task", task_id=mine["id"])
            first = await asyncio.wait_for(anext(aiter(stream)), 10)
        assert first == ResourceUpdated(uri=uris[0])
        await eventually(lambda: updates.uris, what="the 2025 session's update")
        assert updates.uris == [uris[0]]
