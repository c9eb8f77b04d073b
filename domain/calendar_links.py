"""The UIDs imported per user: which task each calendar item became (domain.calendar)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class CalendarLink:
    """A UID imported for a user: the task it became and the version of the item it was."""

    uid: str
    task_id: str
    sequence: int
    last_modified: dt.datetime | None
    task_version: int  # the task's version when this UID last wrote it


@dataclass(frozen=True, slots=True)
class CalendarState:
    """What any change to a user's tasks or links moves: a feed's validator, read in one query
    per table instead of the tasks themselves."""

    tasks: int
    versions: int  # the sum of the tasks' versions: every change adds one
    last_change: dt.datetime | None
    links: tuple[int, int, int, dt.datetime | None]  # count, SEQUENCEs, versions, LAST-MODIFIED


@dataclass(frozen=True, slots=True)
class FeedRow:
    """What a calendar feed needs of one open task with a due before its text: enough to stamp
    it and to tell whether its kept component still shows it."""

    id: str  # the task's
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    recurred_to: str | None


class CalendarLinks(Protocol):
    """The UIDs imported per user (a repository of the unit of work)."""

    async def links(self, user_id: str) -> list[CalendarLink]: ...

    async def find(self, user_id: str, uid: str) -> CalendarLink | None: ...

    async def state(self, user_id: str) -> CalendarState: ...

    async def feed_rows(self, user_id: str) -> list[FeedRow]:
        """The user's open tasks with a due, as FeedRows (no task is read whole)."""
        ...

    async def put(self, user_id: str, link: CalendarLink) -> None:
        """Insert or replace the link of `link.uid`; ConcurrentChange if another transaction
        inserted it meanwhile."""
        ...
