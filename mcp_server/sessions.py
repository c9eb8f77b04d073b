"""Which MCP clients of each user are connected now, and the channel that notifies them.

A connection is recorded by the middleware on each request under the calling user, held weakly
and dropped once closed. What is held is the connection's standalone channel: on a
handshake-era connection the Connection lives as long as the client, while on a 2026-07-28
duplex connection (stdio, in-memory) each request gets a fresh Connection around one long-lived
notify-only channel. A connection without a standalone channel (2026-07-28 over HTTP: one
request, one response) cannot be reached outside a request and is not recorded.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import mcp_types as mt
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext

from domain.adapters.metrics import SESSIONS
from domain.channels import Notification, Sent

log = logging.getLogger("dueflow.mcp.sessions")
LOGGER_NAME = "dueflow.reminders"


class Outbound(Protocol):
    """The part of an SDK connection channel this module uses."""

    async def notify(
        self, method: str, params: Mapping[str, Any] | None, opts: Any = None
    ) -> None: ...


class SessionRegistry:
    """The live MCP connections of each user, held weakly."""

    def __init__(self) -> None:
        self._by_user: dict[str, weakref.WeakSet[Any]] = {}

    def record(self, user_id: str, outbound: Outbound) -> None:
        self._by_user.setdefault(user_id, weakref.WeakSet()).add(outbound)

    def forget(self, user_id: str, outbound: Outbound) -> None:
        self._by_user.get(user_id, weakref.WeakSet()).discard(outbound)

    def count(self) -> int:
        """Every user's connections still open."""
        return sum(len(self.connected(user)) for user in list(self._by_user))

    def connected(self, user_id: str) -> list[Outbound]:
        """The user's connections still open."""
        live = self._by_user.get(user_id)
        if live is None:
            return []
        for outbound in [o for o in live if channel_closed(o)]:
            live.discard(outbound)
        if not live:
            del self._by_user[user_id]
        return list(live)


def channel_closed(outbound: Any) -> bool:
    """Whether the connection behind `outbound` has ended.

    The weak reference alone is not enough: a task or pooled database connection created during
    a request copies its context, which holds the request's session, and so may outlive the
    client. The SDK drops a notification on a closed channel without an error, so its closed
    flag is read here (on the notify-only wrapper of a 2026-07-28 connection, the channel inside).
    """
    channel = getattr(outbound, "_outbound", outbound)
    return bool(getattr(channel, "_closed", False))


class SessionTracker(Middleware):
    """Records the session of every request under its user: the bearer token's, else stdio's."""

    def __init__(self, registry: SessionRegistry, default_user: str | None) -> None:
        self._registry = registry
        self._default_user = default_user

    async def on_request(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        self._track(context)
        return await call_next(context)

    def _track(self, context: MiddlewareContext[Any]) -> None:
        token = get_access_token()
        user = token.client_id if token is not None else self._default_user
        if user is None or context.fastmcp_context is None:
            return
        try:
            session = context.fastmcp_context.session
        except RuntimeError:
            return
        # the SDK exposes no public accessor; fastmcp's own Context reads it the same way
        connection = getattr(session, "_connection", None)
        if connection is not None and getattr(connection, "has_standalone_channel", False):
            self._registry.record(user, connection.outbound)


class McpChannel:
    """Sends each of the user's connected MCP clients a `notifications/message` (level notice)."""

    name = "mcp"

    def __init__(self, registry: SessionRegistry) -> None:
        self._registry = registry

    async def send(self, notification: Notification) -> Sent:
        reached, errors = 0, []
        for outbound in self._registry.connected(notification.user_id):
            try:
                await outbound.notify("notifications/message", _params(notification.message))
                reached += 1
            except Exception as exc:
                # a connection closing under us: it is gone, not a failed delivery
                self._registry.forget(notification.user_id, outbound)
                errors.append(f"{type(exc).__name__}: {exc}")
        if reached:
            return Sent()
        reason = f"no MCP session of {notification.user_id!r} is connected"
        if errors:
            reason += f" (closed while sending: {'; '.join(errors)[:300]})"
        return Sent(skipped=reason)


def _params(message: dict[str, Any]) -> dict[str, Any]:
    # built as the SDK builds it, without its deprecated send_log_message (SEP-2577)
    notification = mt.LoggingMessageNotification(
        params=mt.LoggingMessageNotificationParams(level="notice", data=message, logger=LOGGER_NAME)
    )
    params: dict[str, Any] = notification.model_dump(by_alias=True, mode="json", exclude_none=True)[
        "params"
    ]
    return params


def tracker(registry: SessionRegistry | None, default_user: str | None) -> list[Middleware]:
    """The middleware list build_server adds: the tracker when there is a registry."""
    return [] if registry is None else [SessionTracker(registry, default_user)]


def sessions_refresher(registry: SessionRegistry, transport: str) -> Callable[[], Awaitable[None]]:
    """Reads how many connections `registry` holds into dueflow_mcp_sessions at each scrape."""

    async def sessions() -> None:
        SESSIONS.labels(transport).set(registry.count())

    return sessions
