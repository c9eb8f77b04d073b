"""Foreground: background work waits for a pause between requests, but not forever.

The claims are about order (what returns before what), not about how long anything took: the
timers compared run on the same clock, so the order holds however slow the machine is.
"""

from __future__ import annotations

import asyncio

from domain.adapters.foreground import Foreground

HOUR = 3600.0


async def test_quiet_returns_without_waiting_out_its_settle_when_no_request_was_ever_served() -> (
    None
):
    # an hour's settle and patience: only a quiet() that waited would trip the guard
    async with asyncio.timeout(10):
        await Foreground().quiet(settle=HOUR, patience=HOUR)


async def test_quiet_waits_for_the_request_in_flight_and_then_for_a_pause_after_it() -> None:
    foreground = Foreground()
    order: list[str] = []

    async def background() -> None:
        await foreground.quiet(settle=0.05, patience=HOUR)
        order.append("quiet")

    with foreground.serving():
        assert foreground.busy
        waiter = asyncio.create_task(background())
        await asyncio.sleep(0.1)  # room for a quiet() that wrongly returns mid-request to do so
        order.append("request ended")
    # a timer a little shorter than the settle, started as the request ends, fires first
    timer = asyncio.create_task(asyncio.sleep(0.04))
    await asyncio.wait_for(waiter, 10)
    assert timer.done()
    assert not foreground.busy
    assert order == ["request ended", "quiet"]


async def test_quiet_gives_up_waiting_after_its_patience_while_the_request_goes_on() -> None:
    foreground = Foreground()
    with foreground.serving():
        shorter = asyncio.create_task(asyncio.sleep(0.04))  # fires before the patience runs out
        patient = asyncio.create_task(foreground.quiet(settle=0.01, patience=HOUR))
        await asyncio.wait_for(foreground.quiet(settle=0.01, patience=0.05), 10)
        assert shorter.done()
        assert foreground.busy and not patient.done()
        patient.cancel()


async def test_nested_requests_keep_the_process_busy_until_the_last_ends() -> None:
    foreground = Foreground()
    with foreground.serving():
        with foreground.serving():
            pass
        assert foreground.busy
    assert not foreground.busy
