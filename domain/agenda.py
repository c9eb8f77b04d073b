"""The agenda: what a person asks first. Open tasks that are overdue, due today and due in the
next seven days, in the user's zone, with the count of each and the tasks done today."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from domain.due import localize
from domain.errors import ValidationFailed
from domain.model import Task
from domain.ports import Clock, UnitOfWorkFactory
from domain.query import Outlook, SortKey, TaskFilter, in_order

DAYS_AHEAD = 7
MAX_SHOWN = 100
_BY_DUE = (SortKey("due", descending=False),)


@dataclass(frozen=True, slots=True)
class Agenda:
    """The sections of a user's agenda as of `now`; each lists at most the limit asked for, and
    its count says how many there are."""

    now: dt.datetime
    today: dt.date
    overdue: list[Task]
    today_tasks: list[Task]
    upcoming: list[Task]
    counts: dict[str, int]


class AgendaReader:
    """Reads a user's agenda in one read-only unit of work."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock, user_zone: ZoneInfo):
        self._uow = unit_of_work
        self._clock = clock
        self._zone = user_zone

    async def agenda(self, user_id: str, limit: int = 20) -> Agenda:
        """Overdue (oldest due first), due today and due in the next 7 days (soonest first);
        `limit` tasks at most in each section, and how many each has."""
        if not 1 <= limit <= MAX_SHOWN:
            raise ValidationFailed("limit", f"is {limit}", f"use 1 to {MAX_SHOWN}")
        outlook = Outlook.at(self._clock.now(), self._zone)
        now, today = outlook.now, outlook.today
        start = self._start_of(today)
        tomorrow = self._start_of(today + dt.timedelta(days=1))
        week_end = self._start_of(today + dt.timedelta(days=DAYS_AHEAD + 1))
        sections = {
            "overdue": TaskFilter(overdue=True),
            "today": TaskFilter(overdue=False, due_after=start, due_before=tomorrow),
            "next_7_days": TaskFilter(overdue=False, due_after=tomorrow, due_before=week_end),
        }
        found: dict[str, list[Task]] = {}
        async with self._uow(read_only=True) as uow:
            for name, where in sections.items():
                matching = await uow.tasks.all_matching(user_id, where, now, today)
                found[name] = in_order(matching, _BY_DUE, outlook)
            done = await uow.tasks.all_matching(
                user_id, TaskFilter(status="completed", completed_after=start), now, today
            )
        counts = {name: len(tasks) for name, tasks in found.items()}
        counts["completed_today"] = len(done)
        return Agenda(
            now=now,
            today=today,
            overdue=found["overdue"][:limit],
            today_tasks=found["today"][:limit],
            upcoming=found["next_7_days"][:limit],
            counts=counts,
        )

    def _start_of(self, day: dt.date) -> dt.datetime:
        return localize(dt.datetime.combine(day, dt.time()), self._zone)
