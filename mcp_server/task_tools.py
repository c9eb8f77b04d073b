"""The task tools: add, update, the status changes, recurrence, and reads of tasks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.tools import ToolResult
from pydantic import Field

from domain.arguments import UPDATABLE_FIELDS
from domain.model import MAX_TITLE, Task
from domain.query import TaskFilter, parse_sort
from domain.service import ListArguments, NewTask, TaskService
from mcp_server.schemas import (
    AddResult,
    OccurrenceOut,
    Omitted,
    PreviewResult,
    SortedPage,
    TaskOut,
    TaskPage,
    TaskResult,
    TaskSummary,
    output_schema,
    published,
)
from mcp_server.task_arguments import (
    AllTags,
    Anchor,
    AnyTags,
    ClearableAnchor,
    ClearableDescription,
    ClearableDue,
    ClearablePriority,
    ClearableRecurrence,
    ClearableReminders,
    ClearableTags,
    ClearableTimezone,
    Cursor,
    Description,
    Due,
    DueAfter,
    DueBefore,
    Limit,
    Overdue,
    PriorityArg,
    PriorityFilter,
    PriorityName,
    Query,
    RecurrenceArg,
    Reminders,
    StatusArg,
    Tags,
    TaskId,
    Timezone,
    Title,
)
from mcp_server.tooling import (
    DESTRUCTIVE,
    IDEMPOTENT_WRITE,
    READ,
    WRITE,
    answer,
    correlation,
    domain_errors,
    sent_arguments,
)

# what each status change is called, says, is annotated as and does
_TRANSITIONS = (
    ("complete_task", "Completed", IDEMPOTENT_WRITE, "Mark a task done.", "complete"),
    ("reopen_task", "Reopened", IDEMPOTENT_WRITE, "Mark a completed task open again.", "reopen"),
    (
        "delete_task",
        "Deleted",
        DESTRUCTIVE,
        "Delete a task (soft: restore_task brings it back).",
        "delete",
    ),
    ("restore_task", "Restored", IDEMPOTENT_WRITE, "Bring back a deleted task.", "restore"),
)


@dataclass(frozen=True, slots=True)
class TaskTools:
    """What the task tools share: the server they join, the use cases and the caller."""

    mcp: FastMCP
    service: TaskService
    user: Callable[[], str]

    def out(self, task: Task) -> dict[str, Any]:
        return TaskOut.document(task, self.service.outlook())

    def task_filter(
        self,
        status: str,
        priority: PriorityName | list[PriorityName] | None,
        tags: list[str] | None,
        any_tags: list[str] | None,
        due_before: str | None,
        due_after: str | None,
        overdue: bool | None,
        query: str | None,
    ) -> TaskFilter:
        priorities = [priority] if isinstance(priority, str) else priority
        return self.service.make_filter(
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


def register_task_tools(mcp: FastMCP, user: Callable[[], str], service: TaskService) -> None:
    """Add the task tools to `mcp`, acting for the user `user()` names."""
    tools = TaskTools(mcp, service, user)
    _register_add(tools)
    _register_update(tools)
    for name, verb, hints, doc, use_case in _TRANSITIONS:
        _register_transition(tools, name, verb, hints, doc, getattr(service, use_case))
    _register_recurrence(tools)
    _register_reads(tools)
    _register_sort(tools)


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


def _register_add(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=WRITE, output_schema=output_schema(AddResult))
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
            str | Omitted,
            Field(
                description="Any unique string; retrying with it never creates a second task",
                json_schema_extra=published(),
            ),
        ] = None,
    ) -> ToolResult:
        """Create a task."""
        given = locals()  # the fields of a task are named once, in domain.arguments
        new = NewTask(**{name: given[name] for name in UPDATABLE_FIELDS})
        added = await tools.service.add(tools.user(), new, idempotency_key, correlation())
        verb = "Created" if added.created else "Already created (same idempotency_key)"
        document = {"task": tools.out(added.task), "created": added.created}
        return answer(f"{verb} {describe(added.task)}", document)


def _register_update(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=WRITE, output_schema=output_schema(TaskResult))
    @domain_errors
    async def update_task(
        task_id: TaskId,
        title: Annotated[
            str | Omitted,
            Field(
                description="New title, 1-500 characters",
                json_schema_extra=published(minLength=1, maxLength=MAX_TITLE),
            ),
        ] = None,
        description: ClearableDescription = None,
        due: ClearableDue = None,
        timezone: ClearableTimezone = None,
        priority: ClearablePriority = None,
        tags: ClearableTags = None,
        reminders: ClearableReminders = None,
        recurrence: ClearableRecurrence = None,
        recurrence_anchor: ClearableAnchor = None,
        expected_version: Annotated[
            int | Omitted,
            Field(
                description="Refuse the change if the task is no longer at this version",
                json_schema_extra=published(minimum=1),
            ),
        ] = None,
    ) -> ToolResult:
        """Change the fields given (an explicit null clears one); the others stay as they are."""
        given, sent = locals(), sent_arguments()
        patch = {name: given[name] for name in UPDATABLE_FIELDS if name in sent}
        task = await tools.service.update(
            tools.user(), task_id, patch, expected_version, correlation()
        )
        return answer(f"Updated {describe(task)}", {"task": tools.out(task)})


def _register_transition(
    tools: TaskTools,
    name: str,
    verb: str,
    annotations: mt.ToolAnnotations,
    doc: str,
    step: Callable[[str, str, str | None], Awaitable[Task]],
) -> None:
    async def tool(task_id: TaskId) -> ToolResult:
        task = await step(tools.user(), task_id, correlation())
        return answer(f"{verb} {describe(task)}", {"task": tools.out(task)})

    tool.__name__ = name
    tool.__doc__ = doc
    tools.mcp.tool(
        domain_errors(tool),
        name=name,
        annotations=annotations,
        output_schema=output_schema(TaskResult),
    )


def _register_recurrence(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=IDEMPOTENT_WRITE, output_schema=output_schema(TaskResult))
    @domain_errors
    async def skip_occurrence(task_id: TaskId) -> ToolResult:
        """Move a recurring task to its next occurrence without completing it."""
        task = await tools.service.skip_occurrence(tools.user(), task_id, correlation())
        return answer(f"Skipped to {describe(task)}", {"task": tools.out(task)})

    @tools.mcp.tool(annotations=READ, output_schema=output_schema(PreviewResult))
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
        text, occurrences = await tools.service.preview_recurrence(recurrence, due, timezone, count)
        shown = [OccurrenceOut.of(d) for d in occurrences]
        first = ", ".join(o.date or o.datetime or "" for o in shown[:3])
        return answer(
            f"{text.replace(chr(10), ' ')}: {first}{' …' if len(shown) > 3 else ''}",
            PreviewResult(recurrence=text, occurrences=shown),
        )


def _register_reads(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=READ, output_schema=output_schema(TaskResult))
    @domain_errors
    async def get_task(task_id: TaskId) -> ToolResult:
        """Read one task."""
        task = await tools.service.get(tools.user(), task_id)
        return answer(describe(task), {"task": tools.out(task)})

    @tools.mcp.tool(annotations=READ, output_schema=output_schema(TaskPage))
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
        where = tools.task_filter(
            status, priority, tags, any_tags, due_before, due_after, overdue, query
        )
        page = await tools.service.list_tasks(tools.user(), where, limit, cursor)
        more = "; more with next_cursor" if page.next_cursor else ""
        tasks = TaskSummary.page(page, tools.service.user_zone)
        return answer(
            f"{len(page.tasks)} task(s){more}", {"tasks": tasks, "next_cursor": page.next_cursor}
        )


def _register_sort(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=READ, output_schema=output_schema(SortedPage))
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
        where = tools.task_filter(
            status, priority, tags, any_tags, due_before, due_after, overdue, query
        )
        page = await tools.service.sort_tasks(tools.user(), where, by, limit, cursor)
        order = [str(key) for key in parse_sort(by)]
        more = "; more with next_cursor" if page.next_cursor else ""
        tasks = TaskSummary.page(page, tools.service.user_zone)
        return answer(
            f"{len(page.tasks)} task(s) by {', '.join(order)}{more}",
            {"tasks": tasks, "order": order, "next_cursor": page.next_cursor},
        )
