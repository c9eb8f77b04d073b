"""The batch forms of the write tools: their items read and refused one by one, their progress
sent to the client, and how much of a user's call rate a batch uses (mcp_server.fairness)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_context
from pydantic import BaseModel, ConfigDict, ValidationError

from domain.batch import Progress
from mcp_server.refusals import argument_refusal
from mcp_server.task_arguments import (
    Anchor,
    ClearableAnchor,
    ClearableDescription,
    ClearableDue,
    ClearablePriority,
    ClearableRecurrence,
    ClearableReminders,
    ClearableTags,
    ClearableTimezone,
    Description,
    Due,
    PriorityArg,
    RecurrenceArg,
    Reminders,
    Tags,
    TaskId,
    Timezone,
    Title,
)

CALLS_PER_ITEMS = 10  # a batch counts as one call per this many items against the rate limit
BATCH_ARGUMENTS = ("tasks", "task_ids")


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


M = TypeVar("M", bound=_Item)


class NewTaskItem(_Item):
    """An item of add_task's `tasks`: add_task's own arguments."""

    title: Title
    description: Description = None
    due: Due = None
    timezone: Timezone = None
    priority: PriorityArg = None
    tags: Tags = None
    reminders: Reminders = None
    recurrence: RecurrenceArg = None
    recurrence_anchor: Anchor = None
    idempotency_key: str | None = None


class ChangeItem(_Item):
    """An item of update_task's `tasks`: update_task's own arguments."""

    task_id: TaskId
    title: str | None = None
    description: ClearableDescription = None
    due: ClearableDue = None
    timezone: ClearableTimezone = None
    priority: ClearablePriority = None
    tags: ClearableTags = None
    reminders: ClearableReminders = None
    recurrence: ClearableRecurrence = None
    recurrence_anchor: ClearableAnchor = None
    expected_version: int | None = None


def read_items(
    model: type[M], raw: Sequence[Mapping[str, Any]], tool: str, name: str = "tasks"
) -> list[M]:
    """Each raw item as `model`; an item the model refuses refuses the call, naming its index
    and field in the one refusal style."""
    schema = model.model_json_schema()
    items = []
    for index, value in enumerate(raw):
        try:
            items.append(model.model_validate(value))
        except ValidationError as exc:
            refusal = argument_refusal(exc, tool, schema, item=f"{name}[{index}]")
            raise ToolError(refusal, log_level=logging.INFO) from None
    return items


def only_one_form(tool: str, name: str, sent: frozenset[str], allowed: frozenset[str]) -> None:
    """Refuse a call that gives a batch (`name`) and the single form's arguments beside it."""
    beside = sorted(sent - allowed - {name})
    if name in sent and beside:
        raise ToolError(
            f"{beside[0]}: {tool} takes either {name} or the arguments of one task, not both."
            f" Fix: move {beside[0]} into each item of {name}, or leave {name} out.",
            log_level=logging.INFO,
        )


def client_progress() -> Progress | None:
    """The current request's progress, sent as MCP progress notifications (a client that gave
    no progress token gets none)."""
    try:
        context = get_context()
    except RuntimeError:
        return None

    async def report(done: int, total: int) -> None:
        await context.report_progress(done, total, f"{done} of {total}")

    return report


def batch_calls(arguments: Mapping[str, Any] | None) -> int:
    """How many calls a tool call counts as against its user's rate: one, or one per
    CALLS_PER_ITEMS items of a batch."""
    for name in BATCH_ARGUMENTS:
        value = (arguments or {}).get(name)
        if isinstance(value, list) and value:
            return max(1, math.ceil(len(value) / CALLS_PER_ITEMS))
    return 1
