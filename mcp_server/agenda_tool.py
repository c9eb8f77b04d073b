"""The agenda tool: overdue, today and the next seven days in one call, with counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastmcp import FastMCP
from fastmcp.tools import ToolResult
from pydantic import BaseModel, Field

from domain.agenda import MAX_SHOWN, Agenda
from domain.ports import Page
from domain.service import TaskService
from mcp_server.schemas import DATE, TaskSummary, output_schema
from mcp_server.tooling import READ, answer, domain_errors

SECTIONS = ("overdue", "today", "next_7_days")


class AgendaCounts(BaseModel):
    overdue: int
    today: int
    next_7_days: int
    completed_today: int


class AgendaTask(TaskSummary):
    section: str = Field(json_schema_extra={"enum": list(SECTIONS)})


class AgendaOut(BaseModel):
    date: str = Field(json_schema_extra=DATE)
    timezone: str
    counts: AgendaCounts
    tasks: list[AgendaTask]


def register_agenda_tool(mcp: FastMCP, user: Callable[[], str], service: TaskService) -> None:
    """Add the agenda tool to `mcp`, acting for the user `user()` names."""

    @mcp.tool(annotations=READ, output_schema=output_schema(AgendaOut))
    @domain_errors
    async def agenda(
        limit: Annotated[int, Field(description="Tasks per section", ge=1, le=MAX_SHOWN)] = 20,
    ) -> ToolResult:
        """Start here for "what's on today?": open tasks overdue, due today and in the next 7
        days (in the user's zone), with counts and how many were done today."""
        found = await service.agenda(user(), limit)
        tasks = _tasks(found, service)
        return answer(
            _text(found, service.default_timezone, tasks),
            {
                "date": found.today.isoformat(),
                "timezone": service.default_timezone,
                "counts": found.counts,
                "tasks": tasks,
            },
        )


def _tasks(found: Agenda, service: TaskService) -> list[dict[str, Any]]:
    tasks = []
    for section, listed in zip(
        SECTIONS, (found.overdue, found.today_tasks, found.upcoming), strict=True
    ):
        page = Page(listed, None, found.now)
        tasks += [
            {**task, "section": section} for task in TaskSummary.page(page, service.user_zone)
        ]
    return tasks


def _text(found: Agenda, zone: str, tasks: list[dict[str, Any]]) -> str:
    counts = found.counts
    head = (
        f"Agenda for {found.today:%A %Y-%m-%d} ({zone}): {counts['overdue']} overdue,"
        f" {counts['today']} today, {counts['next_7_days']} in the next 7 days;"
        f" {counts['completed_today']} done today."
    )
    lines = [head]
    for section in SECTIONS:
        listed = [task for task in tasks if task["section"] == section]
        if not listed:
            continue
        shown = "; ".join(
            f"{task['title']!r} due {task['due']} [{task['priority']}] id={task['id']}"
            for task in listed
        )
        more = counts[section] - len(listed)
        lines.append(f"{section}: {shown}" + (f"; … {more} more" if more > 0 else ""))
    return "\n".join(lines)
