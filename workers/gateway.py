"""The realtime gateway: tickets over HTTP, and one WebSocket per view that streams its user's feed.

    POST /realtime/tickets   (Authorization: Bearer <token>, or the board's session cookie)
        -> {"ticket": "dft_...", "expires_in": 30, "url": "/realtime/ws"}
    GET  /realtime/ws[?after=<position>]   (WebSocket)
        Sec-WebSocket-Protocol: dueflow.v1, dueflow.ticket.<ticket>   (the answer: dueflow.v1)

The ticket travels in the subprotocol header, never in the URL, so no request line (access logs,
proxies, browser history) carries it.

The socket says hello (the user's head position), replays the user's changes after `after` from
the database, then sends live ones, each once and in position order: positions of one user have
no gaps, so a missing one is read from the database before the next is sent. A position that can
no longer be replayed answers a `resync` message. A `time` message (no position) says the
user's tasks regroup because time passed: a due moment passed, or the day turned
(domain.turns). See docs/realtime.md for the protocol.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from domain.due import iso_utc
from domain.turns import Turn
from workers.grants import SESSION, TICKET, Grants, Identify, Identity
from workers.live_hub import Hub, Subscription
from workers.realtime import Feed

log = logging.getLogger("dueflow.gateway")

TICKETS_PATH = "/realtime/tickets"
SOCKET_PATH = "/realtime/ws"
COOKIE = "dueflow_board"
PROTOCOL = "dueflow.v1"  # the subprotocol the gateway speaks, and the only one it answers
TICKET_PROTOCOL = "dueflow.ticket."  # + the ticket: how a client hands its ticket over
MAX_POSITION = 2**62

# close codes (docs/realtime.md)
BAD_REQUEST = 4400
TICKET_REFUSED = 4401
TOKEN_REVOKED = 4403
TOO_SLOW = 4429
GOING_AWAY = 1001
_CLOSE_PATIENCE = 30.0  # seconds a closing socket may wait for its client to read


@dataclass(frozen=True)
class GatewayConfig:
    """DUEFLOW_ALLOWED_ORIGINS and DUEFLOW_REALTIME_*: who may connect, how often to beat."""

    origins: Sequence[str] = ()
    heartbeat_seconds: float = 20.0
    replay_page: int = 500


@dataclass(frozen=True)
class Gateway:
    """The gateway's parts: the hub live messages arrive on, the feed to replay from, grants."""

    hub: Hub
    feed: Feed
    grants: Grants
    identify: Identify
    config: GatewayConfig

    def origin_allowed(self, headers: Headers) -> bool:
        """No Origin (not a browser), the page's own origin, or one configured."""
        origin = headers.get("origin")
        if origin is None:
            return True
        origin = origin.rstrip("/")
        if origin in self.config.origins:
            return True
        return urlsplit(origin).netloc.lower() == headers.get("host", "").lower() != ""

    async def caller(self, connection: HTTPConnection) -> Identity | None:
        """Who the request is from: its bearer token, or else its board session cookie."""
        authorization = connection.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            token = authorization[7:].strip()
            return await self.identify(token) if token else None
        cookie = connection.cookies.get(COOKIE)
        if cookie:
            return await self.grants.redeem(SESSION, cookie, once=False)
        return None

    def routes(self) -> list[BaseRoute]:
        return [
            Route(TICKETS_PATH, self._ticket, methods=["POST"]),
            WebSocketRoute(SOCKET_PATH, self._socket),
        ]

    async def _ticket(self, request: Request) -> Response:
        if not self.origin_allowed(request.headers):
            return refusal(403, "forbidden_origin", FOREIGN_ORIGIN)
        identity = await self.caller(request)
        if identity is None:
            return refusal(401, "invalid_token", NO_CALLER)
        ticket = await self.grants.issue(TICKET, identity)
        seconds = int(self.grants.lifetimes.ticket.total_seconds())
        return JSONResponse(
            {"ticket": ticket, "expires_in": seconds, "url": SOCKET_PATH},
            headers={"Cache-Control": "no-store"},
        )

    async def _socket(self, socket: WebSocket) -> None:
        if not self.origin_allowed(socket.headers):
            log.info("refused a WebSocket from Origin %r", socket.headers.get("origin", "")[:100])
            await socket.close(code=1008)  # before accept: the handshake is answered 403
            return
        offered = offered_protocols(socket)
        if PROTOCOL not in offered:
            await socket.accept()  # answering no subprotocol: none it offered is spoken here
            await socket.close(BAD_REQUEST, NO_PROTOCOL)
            return
        await socket.accept(subprotocol=PROTOCOL)
        if "ticket" in socket.query_params:
            await socket.close(TICKET_REFUSED, TICKET_IN_QUERY)
            return
        identity = await self.grants.redeem(TICKET, ticket_offered(offered), once=True)
        if identity is None:
            await socket.close(TICKET_REFUSED, TICKET_REFUSED_REASON)
            return
        after = _position(socket.query_params.get("after"))
        if after is False:
            await socket.close(BAD_REQUEST, BAD_AFTER)
            return
        subscription = self.hub.subscribe(identity.user_id)
        try:
            await Stream(self, socket, identity, subscription).run(after)
        finally:
            self.hub.unsubscribe(subscription)


class Stream:
    """One open socket: hello, the replay, then live messages and heartbeats until it ends."""

    def __init__(
        self, gateway: Gateway, socket: WebSocket, identity: Identity, subscription: Subscription
    ) -> None:
        self._gateway = gateway
        self._feed = gateway.feed
        self._socket = socket
        self._identity = identity
        self._subscription = subscription
        self._last = 0

    async def run(self, after: int | None) -> None:
        writer = asyncio.create_task(self._write(after))
        reader = asyncio.create_task(self._read())
        overflow = asyncio.create_task(self._subscription.overflowed.wait())
        try:
            done, _ = await asyncio.wait(
                {writer, reader, overflow}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (writer, reader, overflow):
                task.cancel()
            await asyncio.gather(writer, reader, overflow, return_exceptions=True)
        if reader in done:
            return  # the client went away
        if overflow in done:
            log.info(
                "closing a slow client of %s at position %d", self._identity.user_id, self._last
            )
            await self._close(TOO_SLOW, TOO_SLOW_REASON)
        elif writer in done and (failure := writer.exception()) is not None:
            if isinstance(failure, _Revoked):
                await self._close(TOKEN_REVOKED, REVOKED_REASON)
            elif not isinstance(failure, WebSocketDisconnect | OSError):
                log.error("realtime stream failed", exc_info=failure)
                await self._close(1011, "internal error; reconnect with your last position")

    async def _write(self, after: int | None) -> None:
        head = await self._feed.head(self._identity.user_id)
        beat = self._gateway.config.heartbeat_seconds
        await self._send_json(
            {"type": "hello", "user": self._identity.user_id, "position": head, "heartbeat": beat}
        )
        self._last = head
        if after is not None and after != head:
            await self._catch_up(after, head)
        queue = self._subscription.queue
        while not self._subscription.overflowed.is_set():
            try:
                async with asyncio.timeout(beat):
                    position, text = await queue.get()
            except TimeoutError:
                if not await self._gateway.grants.still_active(self._identity):
                    raise _Revoked from None
                await self._send_json({"type": "heartbeat", "position": self._last})
                continue
            if position is None:  # a turn: no position, nothing to replay or fill
                await self._socket.send_text(text)
                continue
            if position <= self._last:
                continue  # replayed already
            if position > self._last + 1 and not await self._fill(self._last, position - 1):
                continue  # resynced past it
            await self._socket.send_text(text)
            self._last = position

    async def _catch_up(self, after: int, head: int) -> None:
        """Replay the changes after `after` up to `head`, or ask for a resync."""
        oldest = await self._feed.oldest(self._identity.user_id)
        if after > head or oldest is None or after < oldest - 1:
            await self._resync(head, after)
            return
        self._last = after
        await self._fill(after, head)

    async def _fill(self, after: int, upto: int) -> bool:
        """Send the kept changes after `after` up to `upto`; False (and a resync) if some are
        no longer kept."""
        user = self._identity.user_id
        while after < upto:
            rows = await self._feed.after(user, after, upto, self._gateway.config.replay_page)
            if not rows or rows[0][0] != after + 1:
                await self._resync(upto, after)
                return False
            for position, text in rows:
                if position != after + 1:
                    await self._resync(upto, after)
                    return False
                await self._socket.send_text(text)
                after = self._last = position
        return True

    async def _resync(self, head: int, asked: int) -> None:
        await self._send_json(
            {
                "type": "resync",
                "position": head,
                "reason": f"position {asked} can no longer be replayed: reload the tasks, then"
                f" follow on from position {head}",
            }
        )
        self._last = head

    async def _read(self) -> None:
        """Read the client's frames until it goes away; answer {"type": "ping"} with a pong."""
        while True:
            message = await self._socket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text and len(text) < 200 and _is_ping(text):
                await self._send_json({"type": "pong", "position": self._last})

    async def _send_json(self, message: dict[str, Any]) -> None:
        await self._socket.send_text(json.dumps(message, separators=(",", ":")))

    async def _close(self, code: int, reason: str) -> None:
        try:
            async with asyncio.timeout(_CLOSE_PATIENCE):
                await self._socket.close(code, reason)
        except Exception as exc:
            log.info("could not close a realtime socket with %d: %r", code, exc)


class _Revoked(Exception):
    """The personal token behind the connection was revoked or expired."""


def offered_protocols(socket: WebSocket) -> list[str]:
    """The subprotocols the client offered, in its order."""
    return [str(name).strip() for name in socket.scope.get("subprotocols", ())]


def ticket_offered(offered: Sequence[str]) -> str:
    """The ticket the client offered as `dueflow.ticket.<ticket>` ("" when none or several)."""
    tickets = [name[len(TICKET_PROTOCOL) :] for name in offered if name.startswith(TICKET_PROTOCOL)]
    return tickets[0] if len(tickets) == 1 else ""


def _position(text: str | None) -> int | bool | None:
    """The `after` parameter: None when absent, False when it is no position."""
    if text is None:
        return None
    if not text.isascii() or not text.isdigit() or len(text) > 19 or int(text) > MAX_POSITION:
        return False
    return int(text)


def _is_ping(text: str) -> bool:
    try:
        return bool(json.loads(text) == {"type": "ping"})
    except ValueError:
        return False


def time_message(turn: Turn) -> str:
    """The `time` message of a turn: the user's tasks regroup with no change (docs/realtime.md)."""
    return json.dumps(
        {
            "type": "time",
            "reason": turn.reason,
            "today": turn.today.isoformat(),
            "at": iso_utc(turn.at),
            "task_ids": list(turn.task_ids),
            "more": turn.more,
        },
        separators=(",", ":"),
    )


def refusal(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store"},
    )


FOREIGN_ORIGIN = (
    "this Origin may not use the realtime gateway: add it to DUEFLOW_ALLOWED_ORIGINS, or open the"
    " board from the gateway's own address"
)
NO_CALLER = (
    "missing or unknown credentials: send `Authorization: Bearer <token>` with a personal token"
    " (`dueflow tokens create`) or one of DUEFLOW_TOKENS, or sign in on /board"
)
TICKET_REFUSED_REASON = "ticket refused (missing, unknown, used or expired): POST /realtime/tickets"
TICKET_IN_QUERY = (
    "ticket: not accepted in the URL. Fix: offer it as subprotocol dueflow.ticket.<ticket>"
)
NO_PROTOCOL = "subprotocol: dueflow.v1 not offered. Fix: offer dueflow.v1, dueflow.ticket.<ticket>"
BAD_AFTER = "after must be a position (a whole number >= 0) from a message"
TOO_SLOW_REASON = "too slow: the queue is full; reconnect with your last position"
REVOKED_REASON = "the token behind this connection was revoked or expired: sign in again"
