"""Per-user limits on the HTTP transports, so that no user can stall the others: each user's
tool calls run at most `in_flight` at a time (later ones wait their turn), and arrive at most
`per_second` on average with bursts up to `burst` (a call over that is refused, saying when to
retry, after holding it up to `hold_seconds` in case the rate allows it meanwhile). stdio
serves one trusted user and has neither.

A call counts by its cost, not only as one: as the larger of 1 (a batch: one per
mcp_server.bulk.CALLS_PER_ITEMS items) and its work (domain.work), `characters_per_call`
characters of stored data decoded or answered, or of event payload its user's changes made the
relay handle since the previous call, and `walk_seconds_per_call` of rule walking, each count as
one call. The count (1) is taken before the call runs; the rest is known only after, and is
taken then, leaving the bucket in debt: the user's next calls are refused until it has refilled.
One page of the largest tasks then costs what it makes the server do, so a user who sends only
such calls gets the event loop for a bounded share of the time."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import mcp_types as mt
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from domain.work import WorkLedger, WorkMeter, metering
from mcp_server.bulk import batch_calls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CallLimits:
    """DUEFLOW_CALLS_PER_SECOND, DUEFLOW_CALLS_BURST and DUEFLOW_CALLS_IN_FLIGHT."""

    per_second: float = 20.0
    burst: int = 40
    in_flight: int = 4
    # DUEFLOW_CALL_CHARACTERS; the rule-walk CPU time that counts as one call is fixed
    characters_per_call: int = 65_536
    walk_seconds_per_call: float = 0.02
    # a call over the rate waits this long at most for the rate to allow it, then is refused
    hold_seconds: float = 1.0

    def cost(self, work: WorkMeter, owed_characters: int = 0) -> float:
        """How many calls `work` (and the background work owed) counts as."""
        reading = (work.characters + owed_characters) / self.characters_per_call
        return reading + work.walk_seconds / self.walk_seconds_per_call


class _Bucket:
    """A token bucket: `burst` calls at once, refilled at `per_second`."""

    def __init__(self, limits: CallLimits, now: float) -> None:
        self.tokens = float(limits.burst)
        self.stamp = now
        self.running = asyncio.Semaphore(limits.in_flight)
        self.active = 0  # calls admitted and not yet answered, waiting ones included

    def take(self, limits: CallLimits, now: float, calls: int = 1) -> float:
        """0 if a call counting as `calls` may go now (and count it), else the seconds until it
        may; a call never counts as more than a full bucket."""
        cost = min(calls, limits.burst)
        self.tokens = min(limits.burst, self.tokens + (now - self.stamp) * limits.per_second)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / limits.per_second

    def owe(self, calls: float) -> None:
        """Take `calls` more, into debt if need be (a cost known once the call has run)."""
        self.tokens -= calls


class PerUserLimits(Middleware):
    """Holds each bearer-token user's tool calls to `limits` (see the module's docstring)."""

    def __init__(
        self,
        limits: CallLimits,
        monotonic: Callable[[], float] = time.monotonic,
        work: WorkLedger | None = None,
    ) -> None:
        self._limits = limits
        self._monotonic = monotonic
        self._work = work  # the events' payloads the relay handled for each user
        self._users: dict[str, _Bucket] = {}
        self._swept = monotonic()

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        token = get_access_token()
        if token is None:
            return await call_next(context)
        user = token.client_id
        now = self._monotonic()
        bucket = self._users.get(user)
        if bucket is None:
            self._forget_idle(now)
            bucket = self._users[user] = _Bucket(self._limits, now)
        calls = batch_calls(context.message.arguments)
        wait = bucket.take(self._limits, now, calls)
        if wait:
            # held before it is answered: a call the rate allows within the hold goes ahead,
            # and a client that retries refused calls at once waits here, idle, instead of
            # keeping the event loop busy refusing it
            await asyncio.sleep(min(wait, self._limits.hold_seconds))
            wait = bucket.take(self._limits, self._monotonic(), calls)
        if wait:
            log.info("rate limit: refused a call of %r to %s", user, context.message.name)
            raise ToolError(
                f"rate: more than {self._limits.per_second:g} calls a second from {user!r}"
                f" (bursts up to {self._limits.burst}"
                f"{f'; this batch counts as {calls}' if calls > 1 else ''}; a call counts as"
                f" one more per {self._limits.characters_per_call:,} characters it reads or its"
                f" changes' events carry, and per {self._limits.walk_seconds_per_call * 1000:g}"
                f" ms of rule walking). Fix: wait {math.ceil(wait * 10) / 10:g} s and retry,"
                " and pace further calls.",
                log_level=logging.DEBUG,
            )
        bucket.active += 1
        try:
            async with bucket.running:
                with metering() as work:
                    try:
                        return await call_next(context)
                    finally:
                        owed = self._work.settle(user) if self._work is not None else 0
                        bucket.owe(max(0.0, self._limits.cost(work, owed) - calls))
        finally:
            bucket.active -= 1

    def _forget_idle(self, now: float) -> None:
        """Now and then, drop the buckets of users with nothing running whose bucket has filled
        up again, out of any debt (forgetting them changes nothing), so the table holds only
        recent users."""
        limits = self._limits
        if now - self._swept < max(limits.burst / limits.per_second, 60.0):
            return
        self._swept = now
        for user, bucket in list(self._users.items()):
            refilled = bucket.tokens + (now - bucket.stamp) * limits.per_second
            if bucket.active == 0 and refilled >= limits.burst:
                del self._users[user]
