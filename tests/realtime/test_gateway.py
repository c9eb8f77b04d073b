"""The realtime gateway inside `dueflow serve --transport http` (embedded), its own process,
through a real WebSocket client, with changes made through the MCP tools."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from fastmcp.client.transports import StreamableHttpTransport
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from tests.support.realtime import (
    changes,
    next_message,
    offering,
    open_socket,
    quiet,
    socket_url,
    ticket,
)
from tests.support.servers import (
    ALICE_TOKEN,
    BOB_TOKEN,
    bearer,
    dueflow_http,
    free_port,
    run_dueflow,
)
from tests.support.tools import call


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[str]:
    """The server's base URL; alice and bob hold DUEFLOW_TOKENS."""
    port = free_port()
    upgraded = run_dueflow(tmp_path, "db", "upgrade", DUEFLOW_DATABASE_URL=database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    async with dueflow_http(
        tmp_path,
        port,
        DUEFLOW_DATABASE_URL=database_url,
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob",
        DUEFLOW_ALLOWED_ORIGINS="https://board.example.com",
        DUEFLOW_REALTIME_TICKET_SECONDS="1",
        DUEFLOW_REALTIME_HEARTBEAT_SECONDS="0.5",
        DUEFLOW_RELAY_POLL_SECONDS="0.05",
        DUEFLOW_CALLS_PER_SECOND="10000",
        DUEFLOW_CALLS_BURST="10000",
    ):
        yield f"http://127.0.0.1:{port}"


def mcp(base: str, token: str) -> Client:
    return Client(StreamableHttpTransport(f"{base}/mcp", headers=bearer(token)))


async def closed_with(socket: Any) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(socket.recv(), 5)
    frame = closed.value.rcvd
    assert frame is not None
    return frame.code, frame.reason


async def test_a_socket_needs_a_fresh_ticket_and_an_allowed_origin(served: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        anonymous = await http.post(f"{served}/realtime/tickets")
        forged = await http.post(
            f"{served}/realtime/tickets", headers={"Authorization": "Bearer not-a-token-at-all"}
        )
    assert (anonymous.status_code, forged.status_code) == (401, 401)
    assert "Authorization: Bearer" in anonymous.json()["error_description"]

    ws = socket_url(served)
    v1 = Subprotocol("dueflow.v1")
    for offered in ([v1], [v1, Subprotocol("dueflow.ticket.dft_forged")]):
        async with connect(ws, subprotocols=offered) as socket:
            assert socket.subprotocol == "dueflow.v1"
            assert (await closed_with(socket))[0] == 4401

    good = await ticket(served, ALICE_TOKEN)
    with pytest.raises(InvalidStatus) as foreign:
        await connect(ws, subprotocols=offering(good), origin="https://evil.example.net")  # type: ignore[arg-type]
    assert foreign.value.response.status_code == 403
    # the ticket in the URL, where request lines reach logs, is refused and not spent
    async with connect(f"{ws}?ticket={good}", subprotocols=[v1]) as socket:
        code, reason = await closed_with(socket)
    assert code == 4401 and "dueflow.ticket.<ticket>" in reason
    # without dueflow.v1 no subprotocol is answered and the socket is closed, ticket unspent
    async with connect(ws, subprotocols=[Subprotocol(f"dueflow.ticket.{good}")]) as socket:
        assert socket.subprotocol is None
        code, reason = await closed_with(socket)
    assert code == 4400 and "dueflow.v1" in reason
    async with connect(
        ws,
        subprotocols=offering(good),
        origin="https://board.example.com",  # type: ignore[arg-type]
    ) as socket:
        assert socket.subprotocol == "dueflow.v1"  # only dueflow.v1 is echoed, never the ticket
        assert (await next_message(socket))["type"] == "hello"
    async with connect(ws, subprotocols=offering(good)) as socket:  # the same ticket again
        code, reason = await closed_with(socket)
    assert code == 4401 and "POST /realtime/tickets" in reason

    stale = await ticket(served, ALICE_TOKEN)
    await asyncio.sleep(1.2)  # DUEFLOW_REALTIME_TICKET_SECONDS=1 in the server's process
    async with connect(ws, subprotocols=offering(stale)) as socket:
        assert (await closed_with(socket))[0] == 4401

    fresh = await ticket(served, ALICE_TOKEN)
    async with connect(f"{ws}?after=x", subprotocols=offering(fresh)) as socket:
        assert (await closed_with(socket))[0] == 4400


async def test_each_user_sees_only_their_changes_in_commit_order_and_resumes_without_loss(
    served: str,
) -> None:
    alice_socket = await open_socket(served, ALICE_TOKEN)
    bob_socket = await open_socket(served, BOB_TOKEN)
    async with mcp(served, ALICE_TOKEN) as alice, mcp(served, BOB_TOKEN) as bob:
        task = (await call(alice, "add_task", title="Pay rent", priority="high", tags=["home"]))[
            "task"
        ]
        await call(bob, "add_task", title="Bob's own")
        await call(alice, "update_task", task_id=task["id"], title="Pay rent today")
        await call(alice, "complete_task", task_id=task["id"])
        seen = await changes(alice_socket, 3)
        listed = (await call(alice, "list_tasks", status="all"))["tasks"]
        bobs = await changes(bob_socket, 1)

        assert [m["event"] for m in seen] == ["TASK_CREATED", "TASK_UPDATED", "TASK_COMPLETED"]
        assert [m["sequence"] for m in seen] == [1, 2, 3]
        first = seen[0]["position"]
        assert [m["position"] for m in seen] == [first, first + 1, first + 2]
        assert seen[1]["changes"]["title"] == ["Pay rent", "Pay rent today"]
        assert {m["task_id"] for m in seen} == {task["id"]}
        assert seen[2]["task"] == next(t for t in listed if t["id"] == task["id"])
        assert bobs[0]["task"]["title"] == "Bob's own"
        assert await quiet(bob_socket)

        # alice goes away; changes are made meanwhile; she comes back with her last position
        last = seen[-1]["position"]
        await alice_socket.close()
        other = (await call(alice, "add_task", title="Call mum"))["task"]
        await call(alice, "update_task", task_id=other["id"], priority="urgent")
        await asyncio.sleep(0.3)  # let the relay deliver them while nobody listens
        back = await open_socket(served, ALICE_TOKEN, after=last)
        missed = await changes(back, 2)
        assert [(m["position"], m["event"]) for m in missed] == [
            (last + 1, "TASK_CREATED"),
            (last + 2, "TASK_UPDATED"),
        ]
        await call(alice, "delete_task", task_id=other["id"])
        live = await next_message(back)
        assert (live["position"], live["event"]) == (last + 3, "TASK_DELETED")
        assert await quiet(back)

        # a position this feed never gave answers resync, then the feed goes on
        forged = await open_socket(served, ALICE_TOKEN, after=last + 1000)
        resync = await next_message(forged)
        assert resync["type"] == "resync" and resync["position"] == last + 3
        await call(alice, "add_task", title="After the resync")
        assert (await next_message(forged))["position"] == last + 4
    for socket in (back, forged, bob_socket):
        await socket.close()


async def test_a_due_that_passes_is_told_to_its_users_sockets_only(served: str) -> None:
    alice_socket = await open_socket(served, ALICE_TOKEN)
    bob_socket = await open_socket(served, BOB_TOKEN)
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    async with mcp(served, ALICE_TOKEN) as alice:
        task = (await call(alice, "add_task", title="Call back", due=soon.isoformat()))["task"]
    assert (await next_message(alice_socket))["event"] == "TASK_CREATED"
    # the server's real clock: the due passes about two seconds on
    message = await next_message(alice_socket, timeout=6)
    assert (message["type"], message["reason"], message["task_ids"]) == (
        "time",
        "due",
        [task["id"]],
    )
    assert "position" not in message  # not a change: nothing to resume from
    assert dt.datetime.fromisoformat(message["at"]) > soon
    assert await quiet(bob_socket)
    for socket in (alice_socket, bob_socket):
        await socket.close()
