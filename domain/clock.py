"""Clocks: the system's, and a settable one for tests and simulations."""

from __future__ import annotations

import asyncio
import datetime as dt


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    async def sleep_until(self, moment: dt.datetime, at_most: float) -> None:
        """Sleep until `moment`, or `at_most` seconds (a wall clock that jumps is read again)."""
        await asyncio.sleep(min(max((moment - self.now()).total_seconds(), 0.0), at_most))


class FixedClock:
    """A clock that stands still until told to move."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._now = start.astimezone(dt.UTC)
        self._sleepers: set[asyncio.Future[None]] = set()

    def now(self) -> dt.datetime:
        return self._now

    def set(self, moment: dt.datetime) -> None:
        self._now = moment.astimezone(dt.UTC)
        self._wake_sleepers()

    def advance(self, delta: dt.timedelta) -> None:
        self._now += delta
        self._wake_sleepers()

    async def sleep_until(self, moment: dt.datetime, at_most: float) -> None:
        """Return once the clock is moved (the caller reads it again), or after `at_most` real
        seconds; at once when it reads `moment` already."""
        if self._now >= moment or at_most <= 0:
            return
        moved = asyncio.get_running_loop().create_future()
        self._sleepers.add(moved)
        try:
            async with asyncio.timeout(at_most):
                await moved
        except TimeoutError:
            pass
        finally:
            self._sleepers.discard(moved)

    def _wake_sleepers(self) -> None:
        # a test may move the clock from another thread than the sleepers' loop
        for sleeper in list(self._sleepers):
            sleeper.get_loop().call_soon_threadsafe(_settle, sleeper)


def _settle(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
