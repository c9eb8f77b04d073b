"""The mcp channel: a connected MCP client of the user gets the reminder as a log notification,
nobody else does, and with nobody connected the delivery is recorded as skipped."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client
from fastmcp.client.logging import LogMessage

from dueflow.bootstrap import Runtime
from mcp_server.server import build_server
from tests.support.notifications import deliveries, publish, trigger
from tests.support.waiting import eventually

MODES = ["auto", "legacy"]  # the 2026-07-28 era (fastmcp's default) and the handshake era


class Inbox:
    """A client's log handler that keeps what arrived."""

    def __init__(self) -> None:
        self.messages: list[LogMessage] = []

    async def __call__(self, message: LogMessage) -> None:
        self.messages.append(message)


def client(runtime: Runtime, user: str, inbox: Inbox, mode: str) -> Client[Any]:
    server = build_server(runtime.service, user, sessions=runtime.mcp_sessions)
    return Client(server, log_handler=inbox, mode=mode)


@pytest.mark.parametrize("mode", MODES)
async def test_a_connected_client_of_the_user_receives_the_reminder_and_another_user_s_does_not(
    runtime: Runtime, mode: str
) -> None:
    alice_inbox, bob_inbox = Inbox(), Inbox()
    envelope = trigger(user_id="alice")

    async with (
        client(runtime, "alice", alice_inbox, mode) as alice,
        client(runtime, "bob", bob_inbox, mode) as bob,
    ):
        await alice.call_tool("list_tasks", {})
        await bob.call_tool("list_tasks", {})
        await publish(runtime, envelope)
        await runtime.workers.dispatcher.deliver_due()
        await eventually(lambda: alice_inbox.messages, what="alice's client to get the reminder")

    [message] = alice_inbox.messages
    assert (message.level, message.logger) == ("notice", "dueflow.reminders")
    assert message.data["type"] == "reminder"
    assert message.data["event_id"] == envelope["event_id"]
    assert message.data["task"]["title"] == "Renew the passport"
    assert message.data["text"].startswith("Reminder: 'Renew the passport' is due")
    assert bob_inbox.messages == []
    [mcp] = [d for d in await deliveries(runtime) if d["channel"] == "mcp"]
    assert (mcp["status"], mcp["last_error"]) == ("delivered", None)


@pytest.mark.parametrize("mode", MODES)
async def test_connecting_is_enough_the_handshake_registers_the_session(
    runtime: Runtime, mode: str
) -> None:
    inbox = Inbox()

    async with client(runtime, "alice", inbox, mode):
        await publish(runtime, trigger())
        await runtime.workers.dispatcher.deliver_due()
        await eventually(lambda: inbox.messages, what="the connected client to get the reminder")

    assert len(inbox.messages) == 1


async def test_with_no_session_of_the_user_connected_the_delivery_is_skipped(
    runtime: Runtime,
) -> None:
    bob_inbox = Inbox()

    async with client(runtime, "bob", bob_inbox, "auto") as bob:
        await bob.call_tool("list_tasks", {})
        await publish(runtime, trigger(user_id="alice"))
        await runtime.workers.dispatcher.deliver_due()

    [mcp] = [d for d in await deliveries(runtime) if d["channel"] == "mcp"]
    assert (mcp["status"], mcp["attempts"]) == ("skipped", 1)
    assert mcp["last_error"] == "no MCP session of 'alice' is connected"
    assert bob_inbox.messages == []


@pytest.mark.parametrize("mode", MODES)
async def test_a_session_that_closed_is_forgotten(runtime: Runtime, mode: str) -> None:
    async with client(runtime, "alice", Inbox(), mode) as alice:
        await alice.call_tool("list_tasks", {})
        assert runtime.mcp_sessions.connected("alice")
    # no garbage collection here: a closed connection is dropped even while something
    # (e.g. a pooled database connection's copied context) still holds a reference to it

    await publish(runtime, trigger())
    await runtime.workers.dispatcher.deliver_due()

    assert runtime.mcp_sessions.connected("alice") == []
    [mcp] = [d for d in await deliveries(runtime) if d["channel"] == "mcp"]
    assert mcp["status"] == "skipped"
