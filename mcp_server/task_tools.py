"""The task tools: add, update, the status changes (each also for up to 100 tasks at once),
recurrence, and reads of tasks."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.tools import ToolResult
from pydantic import Field

from domain.arguments import UPDATABLE_FIELDS
from domain.batch import Change
from domain.events import EventType
from domain.model import MAX_TITLE, Task
from domain.query import TaskFilter, parse_sort
from domain.service import ListArguments, NewTask, TaskService
from mcp_server.bulk import ChangeItem, NewTaskItem, client_progress, only_one_form, read_items
from mcp_server.schemas import (
    OccurrenceOut,
    Omitted,
    PreviewResult,
    TaskOut,
    TaskPage,
    TaskResult,
    TaskSummary,
    output_schema,
    published,
    written_schema,
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
    CompletedAfter,
    CompletedBefore,
    Cursor,
    Description,
    Due,
    DueAfter,
    DueBefore,
    Items,
    Limit,
    OptionalTaskId,
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
    TaskIds,
    Timezone,
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

BATCH_LINES = 10  # tasks a batch's text names; the structured content has them all
LISTED_LINES = 20  # tasks a listing's text names; the structured content has the whole page
# what each status change is called, says, is annotated as, does and records
_TRANSITIONS = (
    (
        "complete_task",
        "Completed",
        IDEMPOTENT_WRITE,
        "Mark done; a recurring task's next occurrence follows (to skip one instead:"
        " skip_occurrence).",
        "complete",
        EventType.TASK_COMPLETED,
    ),
    (
        "reopen_task",
        "Reopened",
        IDEMPOTENT_WRITE,
        "Mark done tasks open again.",
        "reopen",
        EventType.TASK_REOPENED,
    ),
    (
        "delete_task",
        "Deleted",
        DESTRUCTIVE,
        "Delete (restore_task undoes it).",
        "delete",
        EventType.TASK_DELETED,
    ),
    (
        "restore_task",
        "Restored",
        IDEMPOTENT_WRITE,
        "Undo delete_task.",
        "restore",
        EventType.TASK_RESTORED,
    ),
)
# what every status change's description ends with
_MANY = " task_ids: up to 100, all or none."


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
        completed_before: str | None = None,
        completed_after: str | None = None,
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
                completed_before=completed_before,
                completed_after=completed_after,
            )
        )


def register_task_tools(mcp: FastMCP, user: Callable[[], str], service: TaskService) -> None:
    """Add the task tools to `mcp`, acting for the user `user()` names."""
    tools = TaskTools(mcp, service, user)
    _register_add(tools)
    _register_update(tools)
    for name, verb, hints, doc, use_case, kind in _TRANSITIONS:
        _register_transition(
            tools, name, verb, hints, doc + _MANY, getattr(service, use_case), kind
        )
    _register_recurrence(tools)
    _register_reads(tools)


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
    @tools.mcp.tool(annotations=WRITE, output_schema=written_schema(created=True))
    @domain_errors
    async def add_task(
        title: Annotated[
            str | Omitted, Field(json_schema_extra=published(minLength=1, maxLength=MAX_TITLE))
        ] = None,
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
            Field(description="A retry with it adds nothing", json_schema_extra=published()),
        ] = None,
        tasks: Items = None,
    ) -> ToolResult:
        """Create a task, or up to 100 with tasks (all or none). Tell the user the due and
        RRULE the answer shows: a phrase may resolve otherwise than meant. E.g. {"title":
        "Stand-up", "due": "tomorrow 9am", "recurrence": "every weekday"}"""
        sent = sent_arguments()
        only_one_form("add_task", "tasks", sent, frozenset())
        if tasks is not None:
            items = read_items(NewTaskItem, tasks, "add_task")
            batch = [
                (
                    NewTask(**{name: getattr(one, name) for name in UPDATABLE_FIELDS}),
                    one.idempotency_key,
                )
                for one in items
            ]
            added = await tools.service.batch.add_many(
                tools.user(), batch, correlation(), client_progress()
            )
            created = sum(a.created for a in added)
            return answer(
                f"Created {created} of {len(added)} task(s): "
                + "; ".join(describe(a.task) for a in added[:BATCH_LINES])
                + (" …" if len(added) > BATCH_LINES else ""),
                {
                    "tasks": [tools.out(a.task) for a in added],
                    "created": [a.created for a in added],
                },
            )
        if title is None:
            raise ToolError(
                "title: missing; add_task needs it. Fix: send title as a string (one task), or"
                " tasks (many).",
                log_level=logging.INFO,
            )
        given = locals()  # the fields of a task are named once, in domain.arguments
        new = NewTask(**{name: given[name] for name in UPDATABLE_FIELDS})
        added_one = await tools.service.add(tools.user(), new, idempotency_key, correlation())
        verb = "Created" if added_one.created else "Already created (same idempotency_key)"
        document = {"task": tools.out(added_one.task), "created": added_one.created}
        return answer(f"{verb} {describe(added_one.task)}", document)


def _register_update(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=WRITE, output_schema=written_schema())
    @domain_errors
    async def update_task(
        task_id: OptionalTaskId = None,
        title: Annotated[
            str | Omitted, Field(json_schema_extra=published(minLength=1, maxLength=MAX_TITLE))
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
                description="Refused if the task is past it",
                json_schema_extra=published(minimum=1),
            ),
        ] = None,
        tasks: Items = None,
    ) -> ToolResult:
        """Change only the fields given (as in add_task; null clears), or up to 100 tasks with
        tasks=[{"task_id":…}] (all or none). Pass expected_version (the version you read) so
        a change made meanwhile is not overwritten."""
        given, sent = locals(), sent_arguments()
        only_one_form("update_task", "tasks", sent, frozenset())
        if tasks is not None:
            items = read_items(ChangeItem, tasks, "update_task")
            changes = [
                Change(
                    one.task_id,
                    {
                        name: getattr(one, name)
                        for name in UPDATABLE_FIELDS
                        if name in one.model_fields_set
                    },
                    one.expected_version,
                )
                for one in items
            ]
            changed = await tools.service.batch.update_many(
                tools.user(), changes, correlation(), client_progress()
            )
            return _many("Updated", changed, tools)
        if task_id is None:
            raise ToolError(
                "task_id: missing; update_task needs it. Fix: send task_id as a string (one"
                " task), or tasks (many).",
                log_level=logging.INFO,
            )
        patch = {name: given[name] for name in UPDATABLE_FIELDS if name in sent}
        task = await tools.service.update(
            tools.user(), task_id, patch, expected_version, correlation()
        )
        return answer(f"Updated {describe(task)}", {"task": tools.out(task)})


def _listed(tasks: list[dict[str, Any]]) -> str:
    """A page's first LISTED_LINES tasks as lines of the answer's text, for clients that hand a
    model the text only (the structured answer holds the whole page)."""
    lines = []
    for task in tasks[:LISTED_LINES]:
        line = f"- {task['title']!r} id={task['id']} v{task['version']}"
        if task["due"]:
            line += f", due {task['due']}" + (" (overdue)" if task["overdue"] else "")
        if task["priority"] != "none":
            line += f", priority {task['priority']}"
        lines.append(line)
    if len(tasks) > LISTED_LINES:
        lines.append(f"- and {len(tasks) - LISTED_LINES} more in the structured answer")
    return "".join("\n" + line for line in lines)


def _many(verb: str, tasks: list[Task], tools: TaskTools) -> ToolResult:
    lines = "; ".join(describe(task) for task in tasks[:BATCH_LINES])
    more = " …" if len(tasks) > BATCH_LINES else ""
    return answer(
        f"{verb} {len(tasks)} task(s): {lines}{more}", {"tasks": [tools.out(t) for t in tasks]}
    )


def _register_transition(
    tools: TaskTools,
    name: str,
    verb: str,
    annotations: mt.ToolAnnotations,
    doc: str,
    step: Callable[[str, str, str | None], Awaitable[Task]],
    kind: EventType,
) -> None:
    async def tool(task_id: OptionalTaskId = None, task_ids: TaskIds = None) -> ToolResult:
        if task_ids is not None:
            if task_id is not None:
                raise ToolError(
                    f"task_id: {name} takes either task_id or task_ids, not both. Fix: put"
                    " task_id into task_ids, or leave task_ids out.",
                    log_level=logging.INFO,
                )
            changed = await tools.service.batch.transition_many(
                tools.user(), task_ids, kind, correlation(), client_progress()
            )
            return _many(verb, changed, tools)
        if task_id is None:
            raise ToolError(
                f"task_id: missing; {name} needs it. Fix: send task_id as a string (one task),"
                " or task_ids (many).",
                log_level=logging.INFO,
            )
        task = await step(tools.user(), task_id, correlation())
        return answer(f"{verb} {describe(task)}", {"task": tools.out(task)})

    tool.__name__ = name
    tool.__doc__ = doc
    tools.mcp.tool(
        domain_errors(tool),
        name=name,
        annotations=annotations,
        output_schema=written_schema(),
    )


def _register_recurrence(tools: TaskTools) -> None:
    @tools.mcp.tool(annotations=IDEMPOTENT_WRITE, output_schema=written_schema())
    @domain_errors
    async def skip_occurrence(task_id: TaskId) -> ToolResult:
        """Move an open recurring task to its next occurrence without completing it."""
        task = await tools.service.skip_occurrence(tools.user(), task_id, correlation())
        return answer(f"Skipped to {describe(task)}", {"task": tools.out(task)})

    @tools.mcp.tool(annotations=READ, output_schema=output_schema(PreviewResult))
    @domain_errors
    async def preview_recurrence(
        recurrence: Annotated[str, Field(description="As in add_task")],
        due: Annotated[str, Field(description="First occurrence")],
        timezone: Timezone = None,
        count: Annotated[int, Field(ge=1, le=100)] = 5,
    ) -> ToolResult:
        """The RRULE and next dates a recurrence resolves to, writing nothing: use it first
        for unusual wording ("every other", month ends) and show the dates."""
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
        """One task in full (description, reminder times, series, timestamps)."""
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
        completed_before: CompletedBefore = None,
        completed_after: CompletedAfter = None,
        sort: Annotated[
            list[str] | Omitted,
            Field(
                description="e.g. ['urgency'] (most pressing first), ['due', 'priority:desc'];"
                " default oldest first",
                json_schema_extra=published(),
            ),
        ] = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> ToolResult:
        """Find tasks matching every filter, a page at a time (follow next_cursor). ISO dates;
        a date is its start in the user's zone. Done in a period: status "completed",
        completed_after. Overview: agenda."""
        where = tools.task_filter(
            status,
            priority,
            tags,
            any_tags,
            due_before,
            due_after,
            overdue,
            query,
            completed_before,
            completed_after,
        )
        if sort is None:
            page = await tools.service.list_tasks(tools.user(), where, limit, cursor)
            order = ["created:asc"]
        else:
            page = await tools.service.sort_tasks(tools.user(), where, sort, limit, cursor)
            order = [str(key) for key in parse_sort(sort)]
        more = "; more with next_cursor" if page.next_cursor else ""
        tasks = TaskSummary.page(page, tools.service.user_zone)
        return answer(
            f"{len(page.tasks)} task(s) by {', '.join(order)}{more}{_listed(tasks)}",
            {"tasks": tasks, "order": order, "next_cursor": page.next_cursor},
        )
