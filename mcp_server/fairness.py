"""Per-user limits on the HTTP transports, so that no user can stall the others: each user's
tool calls run at most `in_flight` at a time (later ones wait their turn), and arrive at most
`per_second` on average with bursts up to `burst` (a call over that is refused, saying when to
retry). stdio serves one trusted user and has neither."""

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

from mcp_server.bulk import batch_calls

log = logging.getLogger(__name__)
# (a batch of N tasks counts as one call per mcp_server.bulk.CALLS_PER_ITEMS of them)


@dataclass(frozen=True)
class CallLimits:
    """DUEFLOW_CALLS_PER_SECOND, DUEFLOW_CALLS_BURST and DUEFLOW_CALLS_IN_FLIGHT."""

    per_second: float = 20.0
    burst: int = 40
    in_flight: int = 4


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


class PerUserLimits(Middleware):
    """Holds each bearer-token user's tool calls to `limits` (see the module's docstring)."""

    def __init__(self, limits: CallLimits, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._monotonic = monotonic
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
            log.info("rate limit: refused a call of %r to %s", user, context.message.name)
            raise ToolError(
                f"rate: more than {self._limits.per_second:g} calls a second from {user!r}"
                f" (bursts up to {self._limits.burst}"
                f"{f'; this batch counts as {calls}' if calls > 1 else ''}). Fix: wait"
                f" {math.ceil(wait * 10) / 10:g} s and retry, and pace further calls.",
                log_level=logging.DEBUG,
            )
        bucket.active += 1
        try:
            async with bucket.running:
                return await call_next(context)
        finally:
            bucket.active -= 1

    def _forget_idle(self, now: float) -> None:
        """Now and then, drop the buckets of users with nothing running whose bucket has filled
        up again (forgetting them changes nothing), so the table holds only recent users."""
        full = self._limits.burst / self._limits.per_second
        if now - self._swept < max(full, 60.0):
            return
        self._swept = now
        for user, bucket in list(self._users.items()):
            if bucket.active == 0 and now - bucket.stamp > full:
                del self._users[user]
