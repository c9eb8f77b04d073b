"""The poll loop: a pass on every wake-up and every interval, at once while there is work, slower
after failures, and a prompt stop."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from domain.adapters.polling import first_set, poll
from domain.backoff import Backoff

HOUR = 3600.0  # an interval no test waits out: a pass that follows came from something else
PATIENCE = 5.0  # generous: a bound on a wait for something that happens at once
SLOW = Backoff(base=HOUR)


class Passes:
    """A pass that answers from a script (an int, or an exception to raise) and counts itself."""

    def __init__(self, *script: int | Exception) -> None:
        self._script = list(script)
        self.count = 0
        self._changed = asyncio.Condition()

    async def __call__(self) -> int:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()
        answer = self._script.pop(0) if self._script else 0
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def reach(self, count: int) -> None:
        """Return once `count` passes have run."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.count >= count), PATIENCE)


class Poller:
    """poll() in tasks of its own, with a wake and a stop event."""

    def __init__(self) -> None:
        self.wake, self.stop = asyncio.Event(), asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(
        self,
        passes: Passes,
        every: float = HOUR,
        backoff: Backoff = SLOW,
        give_way: Callable[[], Awaitable[None]] | None = None,
    ) -> asyncio.Task[None]:
        loop = poll(
            passes,
            wake=self.wake,
            stop=self.stop,
            every=every,
            backoff=backoff,
            log=logging.getLogger("test.polling"),
            name="test pass",
            give_way=give_way,
        )
        self._tasks.append(asyncio.create_task(loop))
        return self._tasks[-1]

    async def close(self) -> None:
        self.stop.set()
        for task in self._tasks:
            await asyncio.wait_for(task, PATIENCE)


@pytest.fixture
async def poller() -> AsyncIterator[Poller]:
    started = Poller()
    yield started
    await started.close()


async def test_the_first_pass_runs_at_once(poller: Poller) -> None:
    passes = Passes()
    poller.start(passes)
    await passes.reach(1)


async def test_a_wake_up_runs_a_pass_at_once(poller: Poller) -> None:
    passes = Passes()
    poller.start(passes)
    await passes.reach(1)
    poller.wake.set()
    await passes.reach(2)


async def test_without_a_wake_up_it_polls_on_the_interval(poller: Poller) -> None:
    passes = Passes()
    poller.start(passes, every=0.01)
    await passes.reach(4)


async def test_a_pass_that_found_work_is_followed_by_another_at_once(poller: Poller) -> None:
    passes = Passes(5, 3, 1)
    poller.start(passes)
    await passes.reach(4)  # the fourth finds nothing, and the loop waits an hour


async def test_stop_ends_the_loop_promptly_while_it_waits(poller: Poller) -> None:
    passes = Passes()
    task = poller.start(passes)
    await passes.reach(1)
    poller.stop.set()
    await asyncio.wait_for(task, PATIENCE)
    assert passes.count == 1


async def test_a_failing_pass_is_logged_and_the_loop_goes_on_after_the_backoff(
    poller: Poller, caplog: pytest.LogCaptureFixture
) -> None:
    passes = Passes(RuntimeError("database down"), RuntimeError("still down"), 0)
    poller.start(passes, backoff=Backoff(base=0.001))
    await passes.reach(3)
    failures = [r for r in caplog.records if r.name == "test.polling"]
    assert [r.getMessage() for r in failures] == [
        "test pass failed (1 in a row)",
        "test pass failed (2 in a row)",
    ]
    assert all(r.exc_info is not None for r in failures)


async def test_after_a_failure_it_waits_for_the_backoff_not_the_interval(poller: Poller) -> None:
    passes = Passes(RuntimeError("down"))
    poller.start(passes, every=HOUR, backoff=Backoff(base=0.001))
    await passes.reach(2)


async def test_each_pass_first_gives_way(poller: Poller) -> None:
    passes = Passes()
    gate = asyncio.Event()

    async def give_way() -> None:
        await gate.wait()

    poller.start(passes, give_way=give_way)
    await asyncio.wait_for(_until_blocked(), PATIENCE)
    assert passes.count == 0
    gate.set()
    await passes.reach(1)


async def _until_blocked() -> None:
    """Let the loop's task run until it waits on something outside it."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_first_set_returns_when_an_event_is_set() -> None:
    one, other = asyncio.Event(), asyncio.Event()
    waiting = asyncio.create_task(first_set(one, other, timeout=HOUR))
    await _until_blocked()
    assert not waiting.done()
    other.set()
    await asyncio.wait_for(waiting, PATIENCE)


async def test_first_set_returns_after_the_timeout() -> None:
    await asyncio.wait_for(first_set(asyncio.Event(), timeout=0.01), PATIENCE)
    await asyncio.wait_for(first_set(asyncio.Event(), timeout=0), PATIENCE)
