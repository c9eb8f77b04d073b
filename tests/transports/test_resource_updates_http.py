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

from tests.support.servers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    dueflow_http,
    free_port,
    run_dueflow,
)
from tests.support.tools import add, call
from tests.support.waiting import eventually

AGENDA = "dueflow://agenda"


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


CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Tests//EN
BEGIN:VTODO
UID:imported-by-another-process@example.com
DTSTAMP:20261123T090000Z
SUMMARY:Imported elsewhere
DUE;VALUE=DATE:20261120
END:VTODO
END:VCALENDAR
"""


async def test_changes_other_processes_write_to_the_database_are_pushed_in_both_eras(
    tmp_path: Path, database_url: str
) -> None:
    """`dueflow import` (which publishes nothing itself) and a second `dueflow serve` write the
    same database; the first server's subscribed sessions hear of both."""
    upgraded = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATABASE_URL=database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    settings = {
        "DUEFLOW_DATABASE_URL": database_url,
        "DUEFLOW_TOKENS": f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob",
        "DUEFLOW_RESOURCE_POLL_SECONDS": "0.2",
        "DUEFLOW_RELAY_POLL_SECONDS": "0.1",
    }
    updates, bobs = Updates(), Updates()
    (tmp_path / "other").mkdir()
    (tmp_path / "todo.ics").write_text(CALENDAR)
    async with (
        dueflow_http(tmp_path, free_port(), **settings) as url,
        Client(url, auth=ALICE_TOKEN) as modern,
        Client(url, auth=ALICE_TOKEN, mode="legacy", message_handler=updates) as legacy,
        Client(url, auth=BOB_TOKEN, mode="legacy", message_handler=bobs) as bob,
        dueflow_http(tmp_path / "other", free_port(), **settings) as other_url,
        Client(other_url, auth=ALICE_TOKEN) as elsewhere,
    ):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # resources/subscribe is the 2025 way
            await legacy.session.subscribe_resource(AGENDA)
            await bob.session.subscribe_resource(AGENDA)
        async with listen(modern.session, resource_subscriptions=[AGENDA]) as stream:
            imported = run_dueflow(
                tmp_path, "import", str(tmp_path / "todo.ics"), "--user", "alice", **settings
            )
            assert imported.returncode == 0, imported.stderr
            assert await asyncio.wait_for(anext(aiter(stream)), 20) == ResourceUpdated(uri=AGENDA)
            await eventually(lambda: updates.uris, what="the import's push", timeout=20)
            assert updates.uris == [AGENDA]

            task = (await call(elsewhere, "add_task", title="Added on the other server"))["task"]
            assert await asyncio.wait_for(anext(aiter(stream)), 20) == ResourceUpdated(uri=AGENDA)
            await eventually(lambda: len(updates.uris) > 1, what="the other server's push")
            assert updates.uris == [AGENDA, AGENDA]
            listed = await call(modern, "list_tasks")
            assert {t["id"] for t in listed["tasks"]} >= {task["id"]}
        assert bobs.uris == []  # alice's changes, wherever made, are never bob's
