"""The task use cases in one place: the commands, the queries and the argument reader they share.

Each part is its own module: domain.arguments reads raw arguments (before any unit of work
opens), domain.patch holds the update rules, domain.commands the changes and domain.queries
the reads; this class only wires them for one user zone and one event source.
"""

from __future__ import annotations

import asyncio

from domain.agenda import AgendaReader
from domain.arguments import ArgumentReader, ListArguments, NewTask
from domain.batch import BatchCommands
from domain.commands import Added, TaskCommands
from domain.due import Due
from domain.model import Status
from domain.ports import Clock, UnitOfWorkFactory
from domain.queries import TaskQueries
from domain.query import TaskFilter


class TaskService:
    """The task use cases for any user; every call names the user it acts for."""

    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        clock: Clock,
        default_timezone: str = "UTC",
        source: str = "dueflow.api",
    ) -> None:
        self.arguments = ArgumentReader(clock, default_timezone)
        self.default_timezone = default_timezone
        self.user_zone = self.arguments.user_zone
        self.commands = TaskCommands(unit_of_work, clock, self.arguments, source)
        self.queries = TaskQueries(unit_of_work, clock, self.user_zone)
        self.batch = BatchCommands(unit_of_work, clock, self.arguments, source)
        # the use cases are the parts' own methods: one signature, one docstring each
        self.add = self.commands.add
        self.update = self.commands.update
        self.complete = self.commands.complete
        self.reopen = self.commands.reopen
        self.delete = self.commands.delete
        self.restore = self.commands.restore
        self.recur = self.commands.recur
        self.skip_occurrence = self.commands.skip_occurrence
        self.get = self.queries.get
        self.list_tasks = self.queries.list_tasks
        self.sort_tasks = self.queries.sort_tasks
        self.outlook = self.queries.outlook
        self.agenda = AgendaReader(unit_of_work, clock, self.user_zone).agenda

    def make_filter(self, args: ListArguments) -> TaskFilter:
        """Read the raw listing filters; dates without a time mean the start of that day."""
        return self.arguments.task_filter(args)

    async def preview_recurrence(
        self, recurrence: str, due: str, timezone: str | None, count: int
    ) -> tuple[str, list[Due]]:
        """The rule `recurrence` resolves to and its first `count` occurrences from `due`."""
        # dateutil may walk a rule for a while (recurrence bounds it): not on the event loop
        return await asyncio.to_thread(self.arguments.preview, recurrence, due, timezone, count)


__all__ = ["Added", "ListArguments", "NewTask", "Status", "TaskService"]
