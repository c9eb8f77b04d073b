"""The MCP tools: parse, resolve the user, make one call into the domain, shape the answer."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Annotated, Any, Literal, ParamSpec

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.auth import AccessToken, TokenVerifier
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from pydantic import Field

from domain.adapters.foreground import Foreground
from domain.history import HistoryReader
from domain.model import Task
from domain.query import parse_sort
from domain.reminder_service import ReminderService
from domain.service import ListArguments, NewTask, TaskService
from mcp_server.history_tools import register_history_tools
from mcp_server.reminder_tools import register_reminder_tools
from mcp_server.schemas import (
    AddResult,
    OccurrenceOut,
    PreviewResult,
    SortedPage,
    TaskOut,
    TaskPage,
    TaskResult,
    TaskSummary,
    output_schema,
)
from mcp_server.sessions import SessionRegistry, tracker
from mcp_server.tooling import (
    DESTRUCTIVE,
    IDEMPOTENT_WRITE,
    READ,
    WRITE,
    answer,
    correlation,
    domain_errors,
)

log = logging.getLogger("dueflow.mcp")
P = ParamSpec("P")

PriorityName = Literal["none", "low", "medium", "high", "urgent"]
StatusName = Literal["open", "completed", "deleted", "all"]
AnchorName = Literal["schedule", "completion"]

_SENT: ContextVar[frozenset[str]] = ContextVar("dueflow_sent_arguments", default=frozenset())

TaskId = Annotated[str, Field(description="The task's id, as add_task or list_tasks gave it")]
Title = Annotated[str, Field(description="Short name of the task, 1-500 characters")]
Description = Annotated[str | None, Field(description="Free text, up to 10,000 characters")]
Due = Annotated[
    str | None,
    Field(
        description="ISO 8601: a date (2026-12-01, all day), a date-time with offset"
        " (2026-12-01T17:00:00+01:00), or a local date-time (2026-12-01T17:00) read in timezone."
        " A plain English phrase ('tomorrow 5pm', 'next friday') is read in the user's zone and"
        " echoed back as the date it resolved to; an ambiguous phrase is refused"
    ),
]
Timezone = Annotated[
    str | None,
    Field(description="IANA zone for due and recurrence, e.g. Europe/Berlin; default: the user's"),
]
PriorityArg = Annotated[PriorityName | None, Field(description="Priority; default none")]
Tags = Annotated[
    list[str] | None,
    Field(description="Up to 50 labels of at most 64 characters; stored in lower case"),
]
Reminders = Annotated[
    list[str] | None,
    Field(
        description="ISO 8601 durations before due (PT15M, P1D) or absolute date-times; an all-day"
        " task's relative reminders count back from 09:00 local on its date"
    ),
]
RecurrenceArg = Annotated[
    str | None,
    Field(
        description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,WE (optionally a second line"
        " EXDATE:20261224T090000); or a phrase ('every weekday', 'every 2 weeks on monday and"
        " wednesday', 'last day of every month'), echoed back as the RRULE. Needs a due; check"
        " a rule first with preview_recurrence"
    ),
]
Anchor = Annotated[
    AnchorName | None,
    Field(
        description="schedule (default): next occurrence follows the rule's slots;"
        " completion: measured from when the task is completed"
    ),
]
StatusArg = Annotated[
    StatusName, Field(description="Which tasks: open (default), completed, deleted, all")
]
PriorityFilter = Annotated[
    PriorityName | list[PriorityName] | None, Field(description="Only these priorities")
]
AllTags = Annotated[list[str] | None, Field(description="Only tasks carrying all of these tags")]
AnyTags = Annotated[list[str] | None, Field(description="Only tasks carrying any of these tags")]
DueBefore = Annotated[
    str | None,
    Field(description="Due strictly before this ISO date/date-time (a date means its start)"),
]
DueAfter = Annotated[
    str | None,
    Field(description="Due at or after this ISO date/date-time (a date means its start)"),
]
Overdue = Annotated[
    bool | None, Field(description="true: only open tasks past due; false: only the others")
]
Query = Annotated[str | None, Field(description="Text to find in title or description")]
Limit = Annotated[int, Field(description="Page size, 1-200", ge=1, le=200)]
Cursor = Annotated[str | None, Field(description="next_cursor of the previous page")]


class TokenUsers(TokenVerifier):
    """Bearer tokens from DUEFLOW_TOKENS, each standing for one user."""

    def __init__(self, users: dict[str, str]) -> None:
        super().__init__()
        self._users = users

    async def verify_token(self, token: str) -> AccessToken | None:
        user = self._users.get(token)
        if user is None:
            return None
        return AccessToken(token=token, client_id=user, scopes=[], claims={"sub": user})


class SentArguments(Middleware):
    """Remembers which arguments a call carried, so update_task can tell null from absent."""

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        token = _SENT.set(frozenset(context.message.arguments or {}))
        try:
            return await call_next(context)
        finally:
            _SENT.reset(token)


class ServingRequests(Middleware):
    """Marks every request as foreground work, which the process's outbox relay gives way to."""

    def __init__(self, foreground: Foreground) -> None:
        self._foreground = foreground

    async def on_request(self, context: Any, call_next: Any) -> Any:
        with self._foreground.serving():
            return await call_next(context)


class TodayInInstructions(Middleware):
    """Puts today's date in the user's zone into the instructions of every handshake."""

    def __init__(self, instructions: Callable[[], str]) -> None:
        self._instructions = instructions

    async def on_initialize(self, context: Any, call_next: Any) -> Any:
        result = await call_next(context)
        if result is None:
            return None
        return result.model_copy(update={"instructions": self._instructions()})

    async def on_discover(self, context: Any, call_next: Any) -> Any:
        result = await call_next(context)
        if isinstance(result, mt.DiscoverResult):
            result = result.model_copy(update={"instructions": self._instructions()})
        return result


def describe(task: Task) -> str:
    parts = [f"{task.title!r} [{task.status}] id={task.id} v{task.version}"]
    if task.due is not None:
        local = task.due.local
        parts.append(
            f"due {local.isoformat() if task.due.all_day else f'{local:%Y-%m-%d %H:%M}'}"
            f" {task.due.timezone}"
        )
    if task.priority.value != "none":
        parts.append(f"priority {task.priority}")
    if task.recurrence is not None:
        parts.append(f"repeats {task.recurrence.rule}")
    return ", ".join(parts)


def build_server(
    service: TaskService,
    default_user: str | None,
    auth: TokenVerifier | None = None,
    *,
    reminders: ReminderService | None = None,
    history: HistoryReader | None = None,
    sessions: SessionRegistry | None = None,
    foreground: Foreground | None = None,
) -> FastMCP:
    """The MCP server for `service`; without a token, calls act as `default_user` (stdio);
    with `history`, task_history reads the audit log through it; with `foreground`, every
    request is counted there (see OutboxRelay)."""

    def instructions() -> str:
        now = dt.datetime.now(service.user_zone)
        return (
            "Dueflow keeps the user's tasks: due dates, priorities, tags, reminders and"
            f" recurrence. Today is {now:%A %Y-%m-%d}, {now:%H:%M} in the user's time zone"
            f" {service.default_timezone}; read relative dates ('tomorrow') in that zone and"
            " pass ISO 8601 to the tools. Use list_tasks / sort_tasks to find ids, expected_version"
            " to avoid overwriting a concurrent change, and idempotency_key when retrying add_task."
        )

    mcp = FastMCP(
        "dueflow",
        instructions=instructions(),
        auth=auth,
        middleware=[
            *([ServingRequests(foreground)] if foreground is not None else []),
            SentArguments(),
            TodayInInstructions(instructions),
            *tracker(sessions, default_user),
        ],
        mask_error_details=True,
    )

    def user() -> str:
        token = get_access_token()
        if token is not None:
            return token.client_id
        if default_user is None:
            raise ToolError("Authentication required: send a bearer token from DUEFLOW_TOKENS.")
        return default_user

    def out(task: Task) -> dict[str, Any]:
        return TaskOut.document(task, service.outlook())

    def listing(
        status: str,
        priority: PriorityName | list[PriorityName] | None,
        tags: list[str] | None,
        any_tags: list[str] | None,
        due_before: str | None,
        due_after: str | None,
        overdue: bool | None,
        query: str | None,
    ) -> Any:
        priorities = [priority] if isinstance(priority, str) else priority
        return service.make_filter(
            ListArguments(
                status=status,
                priority=list(priorities or []),
                tags=tags,
                any_tags=any_tags,
                due_before=due_before,
                due_after=due_after,
                overdue=overdue,
                query=query,
            )
        )

    @mcp.tool(annotations=WRITE, output_schema=output_schema(AddResult))
    @domain_errors
    async def add_task(
        title: Title,
        description: Description = None,
        due: Due = None,
        timezone: Timezone = None,
        priority: PriorityArg = None,
        tags: Tags = None,
        reminders: Reminders = None,
        recurrence: RecurrenceArg = None,
        recurrence_anchor: Anchor = None,
        idempotency_key: Annotated[
            str | None,
            Field(description="Any unique string; retrying with it never creates a second task"),
        ] = None,
    ) -> ToolResult:
        """Create a task."""
        new = NewTask(
            title=title,
            description=description,
            due=due,
            timezone=timezone,
            priority=priority,
            tags=tags,
            reminders=reminders,
            recurrence=recurrence,
            recurrence_anchor=recurrence_anchor,
        )
        added = await service.add(user(), new, idempotency_key, correlation())
        verb = "Created" if added.created else "Already created (same idempotency_key)"
        return answer(
            f"{verb} {describe(added.task)}", {"task": out(added.task), "created": added.created}
        )

    @mcp.tool(annotations=WRITE, output_schema=output_schema(TaskResult))
    @domain_errors
    async def update_task(
        task_id: TaskId,
        title: Annotated[str | None, Field(description="New title")] = None,
        description: Description = None,
        due: Due = None,
        timezone: Timezone = None,
        priority: PriorityArg = None,
        tags: Annotated[list[str] | None, Field(description="Replaces all tags")] = None,
        reminders: Annotated[list[str] | None, Field(description="Replaces all reminders")] = None,
        recurrence: RecurrenceArg = None,
        recurrence_anchor: Anchor = None,
        expected_version: Annotated[
            int | None,
            Field(description="Refuse the change if the task is no longer at this version"),
        ] = None,
    ) -> ToolResult:
        """Change the fields given (an explicit null clears one); the others stay as they are."""
        given = {
            "title": title,
            "description": description,
            "due": due,
            "timezone": timezone,
            "priority": priority,
            "tags": tags,
            "reminders": reminders,
            "recurrence": recurrence,
            "recurrence_anchor": recurrence_anchor,
        }
        sent = _SENT.get()
        patch = {name: value for name, value in given.items() if name in sent}
        task = await service.update(user(), task_id, patch, expected_version, correlation())
        return answer(f"Updated {describe(task)}", {"task": out(task)})

    def transition(
        name: str,
        verb: str,
        annotations: mt.ToolAnnotations,
        doc: str,
        step: Callable[..., Awaitable[Task]],
    ) -> None:
        async def tool(task_id: TaskId) -> ToolResult:
            task = await step(user(), task_id, correlation())
            return answer(f"{verb} {describe(task)}", {"task": out(task)})

        tool.__name__ = name
        tool.__doc__ = doc
        mcp.tool(
            domain_errors(tool),
            name=name,
            annotations=annotations,
            output_schema=output_schema(TaskResult),
        )

    transition(
        "complete_task", "Completed", IDEMPOTENT_WRITE, "Mark a task done.", service.complete
    )
    transition(
        "reopen_task",
        "Reopened",
        IDEMPOTENT_WRITE,
        "Mark a completed task open again.",
        service.reopen,
    )
    transition(
        "delete_task",
        "Deleted",
        DESTRUCTIVE,
        "Delete a task (soft: restore_task brings it back).",
        service.delete,
    )
    transition(
        "restore_task", "Restored", IDEMPOTENT_WRITE, "Bring back a deleted task.", service.restore
    )

    @mcp.tool(annotations=IDEMPOTENT_WRITE, output_schema=output_schema(TaskResult))
    @domain_errors
    async def skip_occurrence(task_id: TaskId) -> ToolResult:
        """Move a recurring task to its next occurrence without completing it."""
        task = await service.skip_occurrence(user(), task_id, correlation())
        return answer(f"Skipped to {describe(task)}", {"task": out(task)})

    @mcp.tool(annotations=READ, output_schema=output_schema(PreviewResult))
    @domain_errors
    async def preview_recurrence(
        recurrence: Annotated[
            str,
            Field(
                description="RRULE (FREQ=WEEKLY;BYDAY=MO,WE; optional EXDATE line) or a phrase"
                " such as 'every weekday' or 'last day of every month'"
            ),
        ],
        due: Annotated[
            str, Field(description="The first occurrence: ISO 8601 date or date-time, or a phrase")
        ],
        timezone: Timezone = None,
        count: Annotated[int, Field(description="How many occurrences, 1-100", ge=1, le=100)] = 5,
    ) -> ToolResult:
        """Show the next occurrences of a rule, with UTC offsets, before writing it to a task."""
        text, occurrences = await service.preview_recurrence(recurrence, due, timezone, count)
        shown = [OccurrenceOut.of(d) for d in occurrences]
        first = ", ".join(o.date or o.datetime or "" for o in shown[:3])
        return answer(
            f"{text.replace(chr(10), ' ')}: {first}{' …' if len(shown) > 3 else ''}",
            PreviewResult(recurrence=text, occurrences=shown),
        )

    @mcp.tool(annotations=READ, output_schema=output_schema(TaskResult))
    @domain_errors
    async def get_task(task_id: TaskId) -> ToolResult:
        """Read one task."""
        task = await service.get(user(), task_id)
        return answer(describe(task), {"task": out(task)})

    @mcp.tool(annotations=READ, output_schema=output_schema(TaskPage))
    @domain_errors
    async def list_tasks(
        status: StatusArg = "open",
        priority: PriorityFilter = None,
        tags: AllTags = None,
        any_tags: AnyTags = None,
        due_before: DueBefore = None,
        due_after: DueAfter = None,
        overdue: Overdue = None,
        query: Query = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ToolResult:
        """List tasks matching every filter given, oldest first, a page at a time."""
        where = listing(status, priority, tags, any_tags, due_before, due_after, overdue, query)
        page = await service.list_tasks(user(), where, limit, cursor)
        more = "; more with next_cursor" if page.next_cursor else ""
        return answer(
            f"{len(page.tasks)} task(s){more}",
            {"tasks": TaskSummary.page(page, service.user_zone), "next_cursor": page.next_cursor},
        )

    @mcp.tool(annotations=READ, output_schema=output_schema(SortedPage))
    @domain_errors
    async def sort_tasks(
        by: Annotated[
            list[str],
            Field(
                description="Sort keys in order: due, priority, created, updated, title, urgency;"
                " each may end in :asc or :desc (defaults: priority, urgency and updated :desc,"
                " the others :asc). Undated tasks sort last. urgency = priority weight (none 0,"
                " low 2, medium 4, high 6, urgent 8) + due (overdue 10 + 0.5/day late up to 7;"
                " today 8; in d<=7 days 8-d; later 0.5) + age (1 per 30 days, max 2); 0 unless open"
            ),
        ],
        status: StatusArg = "open",
        priority: PriorityFilter = None,
        tags: AllTags = None,
        any_tags: AnyTags = None,
        due_before: DueBefore = None,
        due_after: DueAfter = None,
        overdue: Overdue = None,
        query: Query = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ToolResult:
        """List tasks matching the filters in the order the sort keys give."""
        where = listing(status, priority, tags, any_tags, due_before, due_after, overdue, query)
        page = await service.sort_tasks(user(), where, by, limit, cursor)
        order = [str(key) for key in parse_sort(by)]
        more = "; more with next_cursor" if page.next_cursor else ""
        return answer(
            f"{len(page.tasks)} task(s) by {', '.join(order)}{more}",
            {
                "tasks": TaskSummary.page(page, service.user_zone),
                "order": order,
                "next_cursor": page.next_cursor,
            },
        )

    if reminders is not None:
        register_reminder_tools(mcp, user, reminders)
    if history is not None:
        register_history_tools(mcp, user, service, history)
    return mcp
