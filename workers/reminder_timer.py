"""The embedded reminder timer: sleeps until the next pending reminder and fires it.

It reads the schedule from the database, so it picks up after a restart by itself: whatever
came due while the process was down fires at once on start, marked late. Every wake-up fires
all that is due (a sweep); a schedule change wakes it early, and it looks again at least every
`poll_seconds` in case another process changed the schedule.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from domain.adapters.foreground import Foreground
from domain.adapters.metrics import observe_reminders
from domain.adapters.polling import first_set
from domain.ports import Clock
from domain.reminder_service import ReminderService

log = logging.getLogger("dueflow.reminders")


class ReminderTimer:
    """Fires reminders on time in this process; `wake()` after the schedule changed."""

    def __init__(
        self,
        service: ReminderService,
        clock: Clock,
        poll_seconds: float = 30.0,
        foreground: Foreground | None = None,
        lead_seconds: float = 0.025,
    ) -> None:
        self._service = service
        self._clock = clock
        self._poll = poll_seconds
        self._foreground = foreground
        self._lead = lead_seconds
        self._woken = asyncio.Event()

    def wake(self) -> None:
        """Look at the schedule again now: it changed."""
        self._woken.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Fire reminders until `stop` is set; errors are logged and retried, never fatal."""
        while not stop.is_set():
            self._woken.clear()
            try:
                with self._in_foreground():
                    fired = await self._service.fire_due()
                observe_reminders(fired)
                if any(r.late for r in fired):
                    log.warning("%d reminder(s) fired late", sum(r.late for r in fired))
                wait = await self._seconds_to_next()
            except Exception:
                log.exception("the reminder timer failed; trying again in a second")
                wait = 1.0
            # the last stretch before a moment counts as foreground work: the relay and the
            # notification dispatcher start no new pass then, so the write lock is free on time
            await first_set(self._woken, stop, timeout=wait - self._lead)
            if not (stop.is_set() or self._woken.is_set()) and wait > 0:
                with self._in_foreground():
                    await first_set(self._woken, stop, timeout=min(wait, self._lead))

    def _in_foreground(self) -> contextlib.AbstractContextManager[None]:
        if self._foreground is None:
            return contextlib.nullcontext(None)
        return self._foreground.serving()

    async def _seconds_to_next(self) -> float:
        moment = await self._service.next_moment()
        if moment is None:
            return self._poll
        return min(max((moment - self._clock.now()).total_seconds(), 0.0), self._poll)
