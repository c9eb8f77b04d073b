"""MCP resource updates driven by the realtime feed: what no tool call of this process reports.

The feed (`workers.realtime`) holds every change of every user once, whoever made it: a tool
call here, an in-process worker (the recurrence worker's next occurrence), another `dueflow
serve` on the same database, `dueflow import` (whose events a running relay publishes), and in
Dapr mode the realtime app. Rows this process's realtime consumer commits are tapped as they
commit; rows other processes write are found by reading the heads of the users some session
here watches, every `poll` seconds. Each row's task and version go to the watchers, which push
a version once (a tool call here pushed its own already).

Time passing changes the agenda too, with no row in the feed: a due moment passes (a task of
today becomes overdue) or the user's day turns. A turn schedule (domain.turns) follows the
watched users and pushes the agenda, and the tasks that became overdue, at each such moment;
a change in the feed may move a user's next turn, so it is looked up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Sequence

from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.open_dues_sql import SqlOpenDues
from domain.turns import Turn, TurnSchedule
from dueflow.bootstrap import Runtime
from mcp_server.resource_updates import ResourceWatchers
from workers.realtime import Feed

log = logging.getLogger("dueflow.mcp.resources")

DEFAULT_POLL = 1.0  # seconds between two reads of the watched users' heads


class FeedResourceUpdates:
    """Reads the feed for the watched users and tells the watchers of each change in it."""

    def __init__(
        self,
        watchers: ResourceWatchers,
        feed: Feed,
        poll: float = DEFAULT_POLL,
        turns: TurnSchedule | None = None,
    ):
        self._watchers = watchers
        self._feed = feed
        self._poll = poll
        self._turns = turns
        self._seen: dict[str, int] = {}  # watched user -> the last position handled
        self._committed: asyncio.Queue[tuple[str, int, str]] = asyncio.Queue()

    async def start(self, user: str, first: bool) -> None:
        """A session starts watching `user`: the first one follows the feed from its head now
        (the watchers' start hook, awaited before the subscription is answered)."""
        if first or user not in self._seen:
            self._seen[user] = await self._feed.head(user)
        if self._turns is not None:
            self._turns.watch(user)

    async def turned(self, turn: Turn) -> None:
        """Time passed for a watched user: their agenda, and the tasks that became overdue."""
        if self._watchers.watching(turn.user_id):
            await self._watchers.changed(turn.user_id, dict.fromkeys(turn.task_ids))

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
        watched = self._watchers.watched_users()
        if self._turns is not None:
            self._turns.keep_only(watched)  # sessions end without telling: forget their users
        for user in watched:
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
            if self._turns is not None:
                self._turns.reconsider(user)
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
    watched users' heads every DUEFLOW_RESOURCE_POLL_SECONDS; and the agenda as time passes."""
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)

    async def tell(turn: Turn) -> None:
        await updates.turned(turn)

    turns = TurnSchedule(
        SqlOpenDues(runtime.engine), runtime.clock, runtime.service.user_zone, tell
    )
    updates = FeedResourceUpdates(
        watchers, Feed(sessions), runtime.settings.resource_poll_seconds, turns
    )
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
        await turns.aclose()
