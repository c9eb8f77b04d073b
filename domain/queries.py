"""The read use cases: one task, and listings a page at a time."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from domain.cursors import list_cursor, list_position, sort_cursor, sort_offset
from domain.errors import Conflict, NotFound
from domain.model import Task, check_task_id
from domain.ports import Clock, Page, UnitOfWork, UnitOfWorkFactory
from domain.query import Outlook, TaskFilter, check_limit, in_order, parse_sort


class TaskQueries:
    """Reads of one user's tasks; each runs in a read-only unit of work."""

    def __init__(self, unit_of_work: UnitOfWorkFactory, clock: Clock, user_zone: ZoneInfo) -> None:
        self._uow = unit_of_work
        self._clock = clock
        self._zone = user_zone

    def outlook(self) -> Outlook:
        """How the user's tasks stand now: overdue, urgency."""
        return Outlook.at(self._clock.now(), self._zone)

    async def get(self, user_id: str, task_id: str) -> Task:
        check_task_id(task_id)
        async with self._uow(read_only=True) as uow:
            return await load(uow, user_id, task_id)

    async def list_tasks(
        self, user_id: str, where: TaskFilter, limit: int = 50, cursor: str | None = None
    ) -> Page:
        """A page of tasks in creation order; follow next_cursor for the rest."""
        check_limit(limit)
        after = list_position(cursor, where)
        outlook = self.outlook()
        async with self._uow(read_only=True) as uow:
            tasks = await uow.tasks.list_page(
                user_id, where, outlook.now, outlook.today, limit + 1, after
            )
        next_cursor = None
        if len(tasks) > limit:
            tasks = tasks[:limit]
            next_cursor = list_cursor(tasks[-1], where)
        return Page(tasks, next_cursor, outlook.now)

    async def sort_tasks(
        self,
        user_id: str,
        where: TaskFilter,
        by: list[str],
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        """A page of tasks in the order `by` names; ties fall back to creation order."""
        check_limit(limit)
        order = parse_sort(by)
        offset = sort_offset(cursor, where, order)
        outlook = self.outlook()
        now, today = outlook.now, outlook.today
        async with self._uow(read_only=True) as uow:
            if any(key.field == "urgency" for key in order):
                # urgency is worked out here, not in SQL: every match is read and ordered
                everything = await uow.tasks.all_matching(user_id, where, now, today)
                tasks = in_order(everything, order, outlook)[offset : offset + limit + 1]
            else:
                tasks = await uow.tasks.sorted_page(
                    user_id, where, now, today, order, offset, limit + 1
                )
        next_cursor = None
        if len(tasks) > limit:
            tasks = tasks[:limit]
            next_cursor = sort_cursor(offset + limit, where, order)
        return Page(tasks, next_cursor, now)


async def load(
    uow: UnitOfWork, user_id: str, task_id: str, expected_version: int | None = None
) -> Task:
    """The user's task; NotFound if there is none, Conflict if it is not at `expected_version`."""
    task = await uow.tasks.get(user_id, task_id)
    if task is None:
        raise NotFound.task(task_id)
    if expected_version is not None and task.version != expected_version:
        raise Conflict(
            f"expected_version: the task is at version {task.version}, not"
            f" {expected_version}. Fix: get_task again, check the change still applies,"
            " and retry with the current version."
        )
    return task
