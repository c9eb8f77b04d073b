"""Waiting in a test for something that happens in the background: poll a condition until it
holds, instead of sleeping for a while and hoping it has."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar, cast

T = TypeVar("T")

# generous: the suite shares a slow machine, and a condition that holds returns at once anyway
TIMEOUT_SECONDS = 10.0


async def eventually(
    condition: Callable[[], T | Awaitable[T]],
    *,
    what: str,
    timeout: float = TIMEOUT_SECONDS,
) -> T:
    """The condition's first truthy answer, polled (sync or async) until `timeout` seconds pass;
    then fail naming `what` never happened. An exception from the condition fails at once."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pause = 0.005
    while True:
        answered = condition()
        answer = cast(T, await answered if inspect.isawaitable(answered) else answered)
        if answer:
            return answer
        if loop.time() >= deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (last answer: {answer!r})"
            )
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.1)
