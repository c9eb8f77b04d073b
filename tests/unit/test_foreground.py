"""Foreground: background work waits for a pause between requests, but not forever."""

from __future__ import annotations

import asyncio
import time

from domain.adapters.foreground import Foreground


async def test_quiet_returns_at_once_when_no_request_was_ever_served() -> None:
    started = time.monotonic()
    await Foreground().quiet(settle=1.0, patience=5.0)
    assert time.monotonic() - started < 0.5


async def test_quiet_waits_for_the_request_in_flight_and_then_for_the_pause() -> None:
    foreground = Foreground()
    returned = asyncio.Event()

    async def background() -> None:
        await foreground.quiet(settle=0.02, patience=5.0)
        returned.set()

    with foreground.serving():
        assert foreground.busy
        waiter = asyncio.create_task(background())
        await asyncio.sleep(0.05)
        assert not returned.is_set()
    ended = time.monotonic()
    await asyncio.wait_for(waiter, 2)
    assert not foreground.busy
    assert time.monotonic() - ended >= 0.015


async def test_quiet_gives_up_waiting_after_its_patience() -> None:
    foreground = Foreground()
    with foreground.serving():
        started = time.monotonic()
        await asyncio.wait_for(foreground.quiet(settle=0.01, patience=0.05), 2)
        assert 0.04 <= time.monotonic() - started < 1.0


async def test_nested_requests_keep_the_process_busy_until_the_last_ends() -> None:
    foreground = Foreground()
    with foreground.serving():
        with foreground.serving():
            pass
        assert foreground.busy
    assert not foreground.busy
