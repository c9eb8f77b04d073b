"""The reminder tools: list upcoming reminders, snooze one, dismiss a task's reminders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools import ToolResult
from pydantic import BaseModel, Field

from domain.due import iso_utc
from domain.reminder_schedule import ReminderState, ScheduledReminder
from domain.reminder_service import ReminderService, Upcoming
from mcp_server.schemas import MOMENT, Omitted, one_of, output_schema, published
from mcp_server.tooling import IDEMPOTENT_WRITE, READ, answer, correlation, domain_errors

TaskId = Annotated[str, Field()]


class ScheduledOut(BaseModel):
    reminder_id: str
    task_id: str
    spec: str = Field(description="ISO duration before due, an absolute moment, or 'snooze'")
    fires_at: str = Field(description="When it fires, in UTC", json_schema_extra=MOMENT)
    state: str = Field(
        description="pending | fired | cancelled | dismissed | stale | passed",
        json_schema_extra=one_of(ReminderState),
    )

    @classmethod
    def of(cls, reminder: ScheduledReminder) -> ScheduledOut:
        return cls(
            reminder_id=reminder.id,
            task_id=reminder.task_id,
            spec=reminder.spec,
            fires_at=iso_utc(reminder.fire_at),
            state=reminder.state.value,
        )


class UpcomingOut(ScheduledOut):
    title: str = Field(description="The task's title")
    due: str | None = Field(description="The task's due: a date, or a UTC moment")

    @classmethod
    def of_upcoming(cls, item: Upcoming) -> UpcomingOut:
        due = item.task.due
        shown = (
            None if due is None else (due.date.isoformat() if due.date else iso_utc(due.instant))
        )
        return cls(**ScheduledOut.of(item.reminder).model_dump(), title=item.task.title, due=shown)


class UpcomingReminders(BaseModel):
    reminders: list[UpcomingOut] = Field(description="Pending reminders, soonest first")


class Snoozed(BaseModel):
    snoozed: ScheduledOut
    silenced: list[ScheduledOut] = Field(description="Reminders that now stay quiet")


class Dismissed(BaseModel):
    dismissed: list[ScheduledOut]


def register_reminder_tools(
    mcp: FastMCP, user: Callable[[], str], reminders: ReminderService
) -> None:
    """Add the reminder tools to `mcp`; `user` names the caller of the current request."""

    @mcp.tool(annotations=READ, output_schema=output_schema(UpcomingReminders))
    @domain_errors
    async def list_reminders(
        within: Annotated[
            str | Omitted,
            Field(
                description="Duration ahead, e.g. PT2H; default P7D",
                json_schema_extra=published(),
            ),
        ] = None,
    ) -> ToolResult:
        """Reminders still to fire, soonest first, with their tasks and UTC times."""
        found = await reminders.upcoming(user(), within)
        first = f"; next {iso_utc(found[0].reminder.fire_at)}" if found else ""
        return answer(
            f"{len(found)} upcoming reminder(s){first}",
            UpcomingReminders(reminders=[UpcomingOut.of_upcoming(item) for item in found]),
        )

    @mcp.tool(annotations=IDEMPOTENT_WRITE, output_schema=output_schema(Snoozed))
    @domain_errors
    async def snooze_reminder(
        task_id: TaskId,
        until: Annotated[
            str | Omitted,
            Field(
                description="ISO date-time (local: the user's zone)",
                json_schema_extra=published(),
            ),
        ] = None,
        duration: Annotated[
            str | Omitted,
            Field(
                description="Or after this, e.g. PT30M",
                json_schema_extra=published(),
            ),
        ] = None,
    ) -> ToolResult:
        """Remind about a task again later; its reminders before then stay quiet."""
        snoozed, silenced = await reminders.snooze(user(), task_id, until, duration, correlation())
        quiet = f"; {len(silenced)} earlier reminder(s) silenced" if silenced else ""
        return answer(
            f"Will remind at {iso_utc(snoozed.fire_at)}{quiet}",
            Snoozed(
                snoozed=ScheduledOut.of(snoozed), silenced=[ScheduledOut.of(r) for r in silenced]
            ),
        )

    @mcp.tool(annotations=IDEMPOTENT_WRITE, output_schema=output_schema(Dismissed))
    @domain_errors
    async def dismiss_reminder(task_id: TaskId) -> ToolResult:
        """Silence a task's pending reminders (a new due or new reminders bring them back)."""
        dismissed = await reminders.dismiss(user(), task_id, correlation())
        summary = f"Dismissed {len(dismissed)} reminder(s)" if dismissed else "No pending reminders"
        return answer(summary, Dismissed(dismissed=[ScheduledOut.of(r) for r in dismissed]))
