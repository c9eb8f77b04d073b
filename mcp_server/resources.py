"""Tasks as MCP resources: `dueflow://tasks/{id}` (one task, as get_task answers it) and
`dueflow://agenda` (today's and overdue open tasks in the user's zone), each read as the caller's
user; another user's task id is not found, as in the tools."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import Any

from fastmcp import FastMCP
from fastmcp.exceptions import ResourceError

from domain.arguments import ListArguments
from domain.errors import DueflowError
from domain.service import TaskService
from mcp_server.schemas import TaskOut, TaskSummary

TASK_URI = "dueflow://tasks/{task_id}"
AGENDA_URI = "dueflow://agenda"
AGENDA_LIMIT = 200  # per list; `complete` says whether the agenda holds all of them
JSON = "application/json"


def task_uri(task_id: str) -> str:
    return TASK_URI.format(task_id=task_id)


def register_resources(mcp: FastMCP, user: Callable[[], str], service: TaskService) -> None:
    """Add the task and agenda resources to `mcp`, read as the user `user()` names."""

    @mcp.resource(
        TASK_URI,
        name="task",
        mime_type=JSON,
        description="One of your tasks in full, as get_task answers it. Subscribe to hear when"
        " it changes.",
    )
    async def task(task_id: str) -> str:
        try:
            found = await service.get(user(), task_id)
        except DueflowError as exc:
            # a refusal, not a failure: logged as the tools log theirs
            raise ResourceError(exc.message, log_level=logging.INFO) from None
        return json.dumps(TaskOut.document(found, service.outlook()))

    @mcp.resource(
        AGENDA_URI,
        name="agenda",
        mime_type=JSON,
        description="Your open tasks that are overdue and those due today, in your time zone,"
        " soonest first. Subscribe to hear when it changes.",
    )
    async def agenda() -> str:
        return json.dumps(await _agenda(service, user()))


async def _agenda(service: TaskService, user_id: str) -> dict[str, Any]:
    outlook = service.outlook()
    today = outlook.today
    tomorrow = today + dt.timedelta(days=1)
    overdue = await service.sort_tasks(
        user_id, service.make_filter(ListArguments(overdue=True)), ["due"], AGENDA_LIMIT, None
    )
    due_today = await service.sort_tasks(
        user_id,
        service.make_filter(
            ListArguments(due_after=today.isoformat(), due_before=tomorrow.isoformat())
        ),
        ["due"],
        AGENDA_LIMIT,
        None,
    )
    late = TaskSummary.page(overdue, service.user_zone)
    seen = {summary["id"] for summary in late}
    later = [s for s in TaskSummary.page(due_today, service.user_zone) if s["id"] not in seen]
    return {
        "date": today.isoformat(),
        "timezone": service.default_timezone,
        "overdue": late,
        "today": later,
        "counts": {"overdue": len(late), "today": len(later)},
        "complete": overdue.next_cursor is None and due_today.next_cursor is None,
    }
