"""Who watches which resource, and the `notifications/resources/updated` they are sent when a tool
call of their user changes a task.

The two protocol eras subscribe differently, and both are served:
- 2025 sessions send `resources/subscribe` / `resources/unsubscribe`; the connection's standalone
  channel is recorded under the user and URI, and the notification goes out on it.
- 2026-07-28 sessions open `subscriptions/listen` with the URIs they want; the SDK's
  ListenHandler serves the stream from a bus, and this bus keeps each listener under the user
  whose request opened it, so an update reaches only that user's streams.

Two sources tell the watchers of a change:
- this process's tool calls: after a call that is not read-only answers, every task in its answer
  is updated, and so is the agenda, before the answer returns;
- the realtime feed (`feed_changed`, driven from the process's wiring, dueflow/resource_feed.py):
  changes the in-process workers make and changes other processes write to the same database.
Each task's version is remembered per user as it is pushed, so a change both sources report is
pushed once. docs/resources.md says who gets pushes and who must poll.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import ListenHandler, ResourceUpdated, ServerEvent

from mcp_server.resources import AGENDA_URI, task_uri
from mcp_server.sessions import Outbound, channel_closed
from mcp_server.tooling import ReadOnlyTools

log = logging.getLogger("dueflow.mcp.resources")
_REMEMBERED = 10_000  # task versions remembered per user to push a change once


class ResourceWatchers:
    """The subscriptions of every user of this process, in either era; `changed` notifies them."""

    def __init__(self) -> None:
        # user -> uri -> the 2025 sessions' channels
        self._subscribed: dict[str, dict[str, weakref.WeakSet[Any]]] = {}
        # user -> token -> a 2026-07-28 listen stream's listener
        self._listeners: dict[str, dict[object, Callable[[ServerEvent], None]]] = {}
        # user -> task -> the version last pushed (a watched user's only)
        self._pushed: dict[str, dict[str, int]] = {}
        self._start: Callable[[str, bool], Awaitable[None]] | None = None

    def on_start(self, hook: Callable[[str, bool], Awaitable[None]]) -> None:
        """Await `hook(user, first)` as a session of `user` starts watching, before its request
        is answered; `first` when no session of this process watched that user before it."""
        self._start = hook

    async def started(self, user: str, first: bool) -> None:
        if self._start is not None:
            await self._start(user, first)

    def watch(self, user: str, uri: str, outbound: Outbound) -> None:
        self._subscribed.setdefault(user, {}).setdefault(uri, weakref.WeakSet()).add(outbound)

    def unwatch(self, user: str, uri: str, outbound: Outbound) -> None:
        self._subscribed.get(user, {}).get(uri, weakref.WeakSet()).discard(outbound)

    def listen(self, user: str, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        """Keep a listen stream's listener under `user`; the callable forgets it."""
        token = object()
        self._listeners.setdefault(user, {})[token] = listener

        def forget() -> None:
            self._listeners.get(user, {}).pop(token, None)

        return forget

    def watching(self, user: str) -> bool:
        """True when some session of this process watches a resource of `user`."""
        return bool(self._listeners.get(user)) or any(self._subscribed.get(user, {}).values())

    def watched_users(self) -> set[str]:
        """The users some session of this process watches a resource of."""
        users = {user for user, by_uri in self._subscribed.items() if any(by_uri.values())}
        users.update(user for user, listeners in self._listeners.items() if listeners)
        for gone in self._pushed.keys() - users:
            del self._pushed[gone]
        return users

    async def feed_changed(self, user: str, versions: Mapping[str, int]) -> None:
        """Tell `user`'s watchers of these tasks (id -> version) and the agenda, but not of a
        version a tool call (or the feed) has pushed already."""
        pushed = self._pushed.get(user, {})
        fresh = {
            task: version for task, version in versions.items() if version > pushed.get(task, 0)
        }
        if fresh:
            await self.changed(user, fresh)

    async def changed(self, user: str, tasks: Mapping[str, int | None]) -> None:
        """Tell `user`'s watchers that these tasks (id -> version, when known), and so the
        agenda, changed."""
        pushed = self._pushed.setdefault(user, {}) if self.watching(user) else {}
        if len(pushed) > _REMEMBERED:
            pushed.clear()  # only duplicates are at stake: a repeated push is harmless
        for task_id, version in tasks.items():
            if version is not None:
                pushed[task_id] = max(version, pushed.get(task_id, 0))
        uris = [*(task_uri(task_id) for task_id in tasks), AGENDA_URI]
        for listener in list(self._listeners.get(user, {}).values()):
            for uri in uris:
                listener(ResourceUpdated(uri=uri))  # each stream passes on its own URIs only
        watched = self._subscribed.get(user, {})
        for uri in uris:
            for outbound in list(watched.get(uri, ())):
                if channel_closed(outbound):
                    watched[uri].discard(outbound)
                    continue
                try:
                    await outbound.notify("notifications/resources/updated", {"uri": uri})
                except Exception as exc:  # a connection closing under us is gone, not an error
                    log.debug("resource update to a closing session dropped: %s", exc)
                    watched[uri].discard(outbound)


class _UserBus:
    """The SDK's SubscriptionBus for one server: a listen stream is kept under the user whose
    request opens it (the ListenHandler subscribes inside that request)."""

    def __init__(self, watchers: ResourceWatchers, caller: Callable[[], str | None]) -> None:
        self._watchers = watchers
        self._caller = caller

    async def publish(self, event: ServerEvent) -> None:
        raise NotImplementedError("an event without a user cannot be scoped: use changed()")

    def subscribe(self, listener: Callable[[ServerEvent], None]) -> Callable[[], None]:
        user = self._caller()
        return (lambda: None) if user is None else self._watchers.listen(user, listener)


class ChangedTasks(Middleware):
    """After a tool call that may write answers, tells the watchers which tasks it touched."""

    def __init__(self, watchers: ResourceWatchers, caller: Callable[[], str | None]) -> None:
        self._watchers = watchers
        self._caller = caller
        self._tools = ReadOnlyTools()

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        result = await call_next(context)
        user = self._caller()
        content = getattr(result, "structured_content", None)
        if user is None or not isinstance(content, dict):
            return result
        if await self._tools.reads_only(context) is not False:  # read-only, or no such tool
            return result
        tasks: dict[str, int | None] = {}
        for task_id, version in _tasks(content):
            tasks[task_id] = max(version, tasks.get(task_id) or 0)
        if tasks:
            await self._watchers.changed(user, tasks)
        return result


def serve_resource_updates(
    mcp: FastMCP, watchers: ResourceWatchers, caller: Callable[[], str | None]
) -> None:
    """Serve both eras' subscription requests on `mcp`, for the user `caller()` names, and
    feed `watchers` from its tool calls."""

    async def subscribe(
        ctx: ServerRequestContext[Any, Any], params: mt.SubscribeRequestParams
    ) -> mt.EmptyResult:
        user, outbound = caller(), _standalone_channel(ctx)
        if user is not None and outbound is not None:
            first = not watchers.watching(user)
            watchers.watch(user, str(params.uri), outbound)
            await watchers.started(user, first)
        return mt.EmptyResult()

    async def unsubscribe(
        ctx: ServerRequestContext[Any, Any], params: mt.UnsubscribeRequestParams
    ) -> mt.EmptyResult:
        user, outbound = caller(), _standalone_channel(ctx)
        if user is not None and outbound is not None:
            watchers.unwatch(user, str(params.uri), outbound)
        return mt.EmptyResult()

    # FastMCP 4.1 serves neither era's subscriptions; its low-level server (the SDK's) takes
    # handlers by method, and FastMCP offers no public accessor to it
    lowlevel = mcp._mcp_server
    lowlevel.add_request_handler("resources/subscribe", mt.SubscribeRequestParams, subscribe)
    lowlevel.add_request_handler("resources/unsubscribe", mt.UnsubscribeRequestParams, unsubscribe)
    streams = ListenHandler(_UserBus(watchers, caller), max_buffered_events=256)

    async def listen(
        ctx: ServerRequestContext[Any, Any], params: mt.SubscriptionsListenRequestParams
    ) -> Any:
        user = caller()
        if user is not None:
            await watchers.started(user, not watchers.watching(user))
        return await streams(ctx, params)

    lowlevel.add_request_handler(
        "subscriptions/listen", mt.SubscriptionsListenRequestParams, listen
    )
    mcp.add_middleware(ChangedTasks(watchers, caller))


def _tasks(content: Any) -> Iterator[tuple[str, int]]:
    """The (id, version) of the tasks a tool answered: every object with an id, a title and a
    version."""
    if isinstance(content, dict):
        task_id, version = content.get("id"), content.get("version")
        if isinstance(task_id, str) and "title" in content and isinstance(version, int):
            yield task_id, version
        for value in content.values():
            yield from _tasks(value)
    elif isinstance(content, list):
        for item in content:
            yield from _tasks(item)


def _standalone_channel(ctx: ServerRequestContext[Any, Any]) -> Outbound | None:
    # the SDK exposes no public accessor; mcp_server.sessions reads it the same way
    connection = getattr(ctx.session, "_connection", None)
    if connection is None or not getattr(connection, "has_standalone_channel", False):
        return None
    outbound: Outbound = connection.outbound
    return outbound
