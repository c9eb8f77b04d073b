"""A realtime client for the tests: tickets over HTTP and a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol


async def ticket(base: str, token: str) -> str:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.post(
            f"{base}/realtime/tickets", headers={"Authorization": f"Bearer {token}"}
        )
    assert response.status_code == 200, response.text
    text: str = response.json()["ticket"]
    return text


def socket_url(base: str, after: int | None = None) -> str:
    url = base.replace("http://", "ws://") + "/realtime/ws"
    return url if after is None else f"{url}?after={after}"


def offering(ticket_text: str) -> list[Subprotocol]:
    """The subprotocols a client offers to hand `ticket_text` over."""
    return [Subprotocol("dueflow.v1"), Subprotocol(f"dueflow.ticket.{ticket_text}")]


async def open_socket(
    base: str, token: str, after: int | None = None, **options: Any
) -> ClientConnection:
    """A connected socket of `token`'s user, its hello read."""
    offered = offering(await ticket(base, token))
    socket = await connect(socket_url(base, after), subprotocols=offered, **options)
    assert socket.subprotocol == "dueflow.v1"
    hello = await next_message(socket)
    assert hello["type"] == "hello", hello
    return socket


async def next_message(socket: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    """The next message that is no heartbeat."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if message["type"] != "heartbeat":
            return message


async def changes(
    socket: ClientConnection, count: int, timeout: float = 5.0
) -> list[dict[str, Any]]:
    return [await next_message(socket, timeout) for _ in range(count)]


async def quiet(socket: ClientConnection, seconds: float = 0.3) -> bool:
    """True when nothing but heartbeats arrives for `seconds`."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = json.loads(await asyncio.wait_for(socket.recv(), left))
        except TimeoutError:
            return True
        if message["type"] != "heartbeat":
            raise AssertionError(f"unexpected message {message}")
    return True
