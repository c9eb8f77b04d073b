"""MCP resource updates driven by the realtime feed: what no tool call of this process reports.

The feed (`workers.realtime`) holds every change of every user once, whoever made it: a tool
call here, an in-process worker (the recurrence worker's next occurrence), another `dueflow
serve` on the same database, `dueflow import` (whose events a running relay publishes), and in
Dapr mode the realtime app. Rows this process's realtime consumer commits are tapped as they
commit; rows other processes write are found by reading the heads of the users some session
here watches, every `poll` seconds. Each row's task and version go to the watchers, which push
a version once (a tool call here pushed its own already).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import async_sessionmaker

from dueflow.bootstrap import Runtime
from mcp_server.resource_updates import ResourceWatchers
from workers.realtime import Feed

log = logging.getLogger("dueflow.mcp.resources")

DEFAULT_POLL = 1.0  # seconds between two reads of the watched users' heads


class FeedResourceUpdates:
    """Reads the feed for the watched users and tells the watchers of each change in it."""

    def __init__(self, watchers: ResourceWatchers, feed: Feed, poll: float = DEFAULT_POLL):
        self._watchers = watchers
        self._feed = feed
        self._poll = poll
        self._seen: dict[str, int] = {}  # watched user -> the last position handled
        self._committed: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()

    async def start(self, user: str, first: bool) -> None:
        """A session starts watching `user`: the first one follows the feed from its head now
        (the watchers' start hook, awaited before the subscription is answered)."""
        if first or user not in self._seen:
            self._seen[user] = await self._feed.head(user)

    def tap(self, user: str, position: int, text: str) -> None:
        """A feed row this process's realtime consumer committed (called after its commit)."""
        if self._watchers.watching(user):  # the rest are read at the next poll, if watched then
            self._committed.put_nowait((user, position, text))

    async def run(self, stop: asyncio.Event) -> None:
        """Handle tapped rows as they come, and read the heads every `poll` seconds, until
        `stop` is set."""
        loop = asyncio.get_running_loop()
        due = loop.time()
        while not stop.is_set():
            try:
                if loop.time() >= due:
                    due = loop.time() + self._poll
                    await self._read_heads()
                await self._handle_tapped(max(due - loop.time(), 0.0), stop)
            except Exception:  # the database away, say: try again at the next poll
                log.exception("resource updates from the realtime feed failed; retrying")
                await _wait(stop, self._poll)

    async def _handle_tapped(self, seconds: float, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        getting = asyncio.ensure_future(self._committed.get())
        try:
            await asyncio.wait({stopping, getting}, timeout=seconds, return_when="FIRST_COMPLETED")
        finally:
            stopping.cancel()
            if not getting.done():
                getting.cancel()
        if getting.done() and not getting.cancelled():  # a row taken is never dropped
            await self._handle(*getting.result())

    async def _handle(self, user: str, position: int, text: str) -> None:
        if not self._watchers.watching(user):
            return
        last = self._seen.get(user)
        if last is not None and position <= last:
            return
        rows: list[tuple[int, str]] = []
        if last is not None and position > last + 1:
            rows.extend(await self._feed.after(user, last, position - 1))
        rows.append((position, text))
        self._seen[user] = position
        await self._tell(user, rows)

    async def _read_heads(self) -> None:
        # a user no session watches keeps the position last handled (an int): when a session
        # watches again, `start` moves it to the head
        for user in self._watchers.watched_users():
            head = await self._feed.head(user)
            last = self._seen.setdefault(user, head)
            if head > last:
                rows = await self._feed.after(user, last, head)
                self._seen[user] = head
                await self._tell(user, rows)

    async def _tell(self, user: str, rows: Sequence[tuple[int, str]]) -> None:
        versions: dict[str, int] = {}
        for _, text in rows:
            change = json.loads(text)
            task = change.get("task")
            if change.get("type") != "change" or not isinstance(task, dict):
                continue
            if change.get("event") == "REMINDER_TRIGGERED":
                continue  # neither the task's resource nor the agenda shows a fired reminder
            task_id, version = str(change["task_id"]), int(task["version"])
            versions[task_id] = max(version, versions.get(task_id, 0))
        if versions:
            await self._watchers.feed_changed(user, versions)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@contextlib.asynccontextmanager
async def feed_resource_updates(
    runtime: Runtime, watchers: ResourceWatchers
) -> AsyncIterator[None]:
    """Push `watchers`' resource updates from the realtime feed for the block's duration: the
    rows the in-process workers commit (embedded) as they commit, every row by reading the
    watched users' heads every DUEFLOW_RESOURCE_POLL_SECONDS."""
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    updates = FeedResourceUpdates(watchers, Feed(sessions), runtime.settings.resource_poll_seconds)
    watchers.on_start(updates.start)
    if runtime.workers is not None:
        runtime.workers.feed_taps.add(updates.tap)
    stop = asyncio.Event()
    task = asyncio.create_task(updates.run(stop), name="resource-updates")
    try:
        yield
    finally:
        stop.set()
        await task
