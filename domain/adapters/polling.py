"""The loop of a background worker that works in passes: on a wake-up, else every so often."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from domain.backoff import Backoff


async def poll(
    pass_: Callable[[], Awaitable[int]],
    *,
    wake: asyncio.Event,
    stop: asyncio.Event,
    every: float,
    backoff: Backoff,
    log: logging.Logger,
    name: str,
    give_way: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run `pass_` until `stop` is set; a failing pass is logged and only slows the loop down.

    `pass_` answers how much it handled: while that is more than nothing it runs again at once,
    else it waits for `wake`, for `every` seconds, or after failures for `backoff`. `give_way`
    is awaited before each pass (to let the requests being served go first).
    """
    failures = 0
    while not stop.is_set():
        wake.clear()  # a wake-up during the pass runs the next one at once
        if give_way is not None:
            await give_way()
        try:
            handled = await pass_()
            failures = 0
        except Exception:
            failures += 1
            handled = 0
            log.exception("%s failed (%d in a row)", name, failures)
        if handled:
            continue  # more may be waiting: handle it before sleeping
        await first_set(wake, stop, timeout=every if failures == 0 else backoff.delay(failures))


async def first_set(*events: asyncio.Event, timeout: float) -> None:
    """Return once any of `events` is set, or after `timeout` seconds."""
    if timeout <= 0:
        return
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
