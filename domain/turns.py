"""Turns: the moments a user's open tasks regroup with no change made, only time passing.

A view groups open tasks as overdue, due today, upcoming and undated, in the user's zone; the
grouping changes with no event when a due moment passes (the task becomes overdue) and when the
user's day turns at local midnight (today's all-day tasks become overdue, tomorrow's become
today's). `TurnSchedule` knows, for each watched user, the next such moment, and tells whoever
watches (a live view's connections, an agenda's subscribers) when it comes.

One shared schedule: a heap of the watched users' next turns and one task that sleeps until the
earliest. Nothing runs while no user is watched. A user's next turn is one indexed read (the
earliest due from the last look on, `OpenDues.next_due`), looked up again when the user is
`reconsider`ed (a change of theirs arrived), never by scanning their tasks.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from domain.due import localize
from domain.ports import Clock, OpenDues

log = logging.getLogger("dueflow.turns")

DUE: Literal["due"] = "due"
DAY: Literal["day"] = "day"
TURN_IDS = 100  # task ids a turn names at most; `more` says there were others
LOOK_EVERY = 60.0  # seconds the schedule sleeps at most before reading the clock again
_AFTER = dt.timedelta(microseconds=1)  # a due moment is overdue once the clock is past it
_RETRY = 1.0  # seconds before a failed look-up is tried again
# A stream of changes costs a user one look-up per this many seconds, not one per change: the
# first change is looked at once, those after it within this long together
CHANGES_GATHER = 1.0


@dataclass(frozen=True, slots=True)
class Turn:
    """One user's open tasks regrouped at `at`: a due passed (`due`) or the day turned (`day`,
    which wins when both happen at once). `task_ids` became overdue (at most TURN_IDS of them;
    `more` when others did too); `today` is the user's date from now on."""

    user_id: str
    reason: Literal["due", "day"]
    at: dt.datetime
    today: dt.date
    task_ids: tuple[str, ...]
    more: bool


def next_day_start(today: dt.date, user_zone: ZoneInfo) -> dt.datetime:
    """The UTC moment the user's day after `today` begins (local midnight, or the first moment
    after it where a DST change skips midnight)."""
    return localize(dt.datetime.combine(today + dt.timedelta(days=1), dt.time()), user_zone)


@dataclass(slots=True)
class _Watched:
    since: dt.datetime  # the last look: what fell due before it has been told
    today: dt.date  # the user's date at the last look
    next: dt.datetime | None = None  # the next turn, once looked up


Tell = Callable[[Turn], Awaitable[None]]


class TurnSchedule:
    """The next turn of each watched user, and one task that tells `tell` of each as it comes."""

    def __init__(
        self,
        dues: OpenDues,
        clock: Clock,
        user_zone: ZoneInfo,
        tell: Tell,
        *,
        look_every: float = LOOK_EVERY,
        ids: int = TURN_IDS,
        gather: float = CHANGES_GATHER,
    ) -> None:
        self._dues = dues
        self._clock = clock
        self._zone = user_zone
        self._tell = tell
        self._look_every = look_every
        self._ids = ids
        self._watched: dict[str, _Watched] = {}
        self._stale: set[str] = set()  # users whose next turn is to be looked up
        self._changed: set[str] = set()  # users with changes since the last gathered look-up
        self._gather = gather
        self._next_gathered = float("-inf")  # loop time of the next look-up for changes
        self._heap: list[tuple[dt.datetime, str]] = []  # (turn, user); outdated entries skipped
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watch(self, user_id: str) -> None:
        """Follow `user_id`'s turns from now (nothing when followed already)."""
        if user_id in self._watched:
            return
        now = self._clock.now()
        self._watched[user_id] = _Watched(since=now, today=now.astimezone(self._zone).date())
        self._stale.add(user_id)
        self._wake()

    def unwatch(self, user_id: str) -> None:
        """Stop following `user_id`; with nobody followed the schedule's task ends."""
        if self._watched.pop(user_id, None) is not None:
            self._stale.discard(user_id)
            self._changed.discard(user_id)
            self._wake()

    def keep_only(self, user_ids: Iterable[str]) -> None:
        """Follow exactly these users (those new from now)."""
        wanted = set(user_ids)
        for gone in self._watched.keys() - wanted:
            self.unwatch(gone)
        for user_id in wanted:
            self.watch(user_id)

    def reconsider(self, user_id: str) -> None:
        """A change of `user_id`'s arrived: it may move their next turn."""
        if user_id in self._watched and user_id not in self._changed:
            self._changed.add(user_id)  # looked up with the others (CHANGES_GATHER)
            self._wake()

    def watching(self) -> set[str]:
        return set(self._watched)

    def next_turn(self, user_id: str) -> dt.datetime | None:
        """The user's next turn as last looked up (None while unknown or not followed)."""
        watched = self._watched.get(user_id)
        return watched.next if watched is not None else None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def aclose(self) -> None:
        """Forget every user and wait for the task to end."""
        self._watched.clear()
        self._stale.clear()
        self._changed.clear()
        self._heap.clear()
        task, self._task = self._task, None
        if task is not None:
            self._woken.set()
            await task

    def _wake(self) -> None:
        self._woken.set()
        if self._watched and not self.running:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return  # no loop yet: the first watch inside one starts the task
            self._task = loop.create_task(self._run(), name="turn-schedule")

    async def _run(self) -> None:
        while self._watched:
            self._woken.clear()
            try:
                self._gather_changes()
                await self._look_up_stale()
                await self._tell_due_turns()
                wait = self._look_every
                if self._heap:
                    wait = min(wait, (self._heap[0][0] - self._clock.now()).total_seconds())
                if self._changed:
                    rest = self._next_gathered - asyncio.get_running_loop().time()
                    wait = min(wait, max(rest, 0.0))
            except Exception:  # the database away, say: look again shortly
                log.exception("the turn schedule failed; looking again in %.0f s", _RETRY)
                wait = _RETRY
            if self._woken.is_set() or wait <= 0:
                continue
            await self._sleep(wait)
        self._heap.clear()

    def _gather_changes(self) -> None:
        """The changed users' look-ups are due: at most once per `gather` seconds."""
        now = asyncio.get_running_loop().time()
        if self._changed and now >= self._next_gathered:
            self._stale |= self._changed
            self._changed.clear()
            self._next_gathered = now + self._gather

    async def _sleep(self, seconds: float) -> None:
        """Until the clock reaches the next turn (or `seconds` pass), or a wake-up."""
        moment = self._clock.now() + dt.timedelta(seconds=seconds)
        sleeping = asyncio.ensure_future(self._clock.sleep_until(moment, seconds))
        woken = asyncio.ensure_future(self._woken.wait())
        try:
            await asyncio.wait({sleeping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (sleeping, woken):
                waiter.cancel()
            await asyncio.gather(sleeping, woken, return_exceptions=True)

    async def _look_up_stale(self) -> None:
        while self._stale:
            user_id = self._stale.pop()
            watched = self._watched.get(user_id)
            if watched is None:
                continue
            try:
                await self._look_up(user_id, watched)
            except BaseException:
                self._stale.add(user_id)
                raise

    async def _look_up(self, user_id: str, watched: _Watched) -> None:
        # from the last look, not from now: a due that passed since is still to be told
        due = await self._dues.next_due(user_id, watched.since)
        turn = next_day_start(watched.today, self._zone)
        if due is not None:
            turn = min(turn, due + _AFTER)
        if self._watched.get(user_id) is watched and turn != watched.next:
            watched.next = turn
            heapq.heappush(self._heap, (turn, user_id))

    async def _tell_due_turns(self) -> None:
        while self._heap and self._heap[0][0] <= self._clock.now():
            moment, user_id = heapq.heappop(self._heap)
            watched = self._watched.get(user_id)
            if watched is None or watched.next != moment:
                continue  # unwatched since, or looked up again
            watched.next = None
            try:
                turn = await self._turn(user_id, watched)
            finally:
                self._stale.add(user_id)  # its next turn, from this look on
            if turn is not None:
                await self._tell(turn)

    async def _turn(self, user_id: str, watched: _Watched) -> Turn | None:
        """What happened to the user's tasks since the last look (None: nothing to tell, a task
        that was due has been changed meanwhile)."""
        now = self._clock.now()
        today = now.astimezone(self._zone).date()
        found = await self._dues.fell_due(
            user_id, watched.since, now, (watched.today, today), self._ids + 1
        )
        reason = DAY if today != watched.today else DUE
        watched.since, watched.today = now, today
        if reason == DUE and not found:
            return None
        ids = tuple(found[: self._ids])
        return Turn(user_id, reason, now, today, ids, more=len(found) > self._ids)
