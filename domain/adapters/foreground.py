"""Requests in flight, so that background work in the same process can give way to them."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator


class Foreground:
    """Counts the requests a process is serving; `quiet()` waits for a pause between them.

    The outbox relay shares the event loop, the database connections and (on SQLite) the one
    write lock with the requests. Run beside a stream of requests, each of its passes delays the
    request that arrives meanwhile; run in the pauses, and batched, it delays none. `patience`
    bounds how long it gives way, so under load without pauses events still flow.
    """

    def __init__(self) -> None:
        self._serving = 0
        self._last_end = float("-inf")
        self._idle = asyncio.Event()
        self._idle.set()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """Mark one request as in flight for the duration of the block."""
        self._serving += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._serving -= 1
            if self._serving == 0:
                self._last_end = time.monotonic()
                self._idle.set()

    @property
    def busy(self) -> bool:
        return self._serving > 0

    async def quiet(self, settle: float, patience: float) -> None:
        """Return once no request has been in flight for `settle` seconds, or after `patience`."""
        deadline = time.monotonic() + patience
        while True:
            now = time.monotonic()
            if now >= deadline:
                return
            if self._serving:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._idle.wait(), deadline - now)
                continue
            rest = self._last_end + settle - now
            if rest <= 0:
                return
            await asyncio.sleep(min(rest, deadline - now))
