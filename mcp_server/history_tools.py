"""The history tool: what changed, when and by whom, from the audit log."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Annotated

from fastmcp import FastMCP
from fastmcp.tools import ToolResult
from pydantic import Field

from domain.history import (
    DEFAULT_HISTORY_LIMIT,
    HistoryEntry,
    HistoryQuery,
    HistoryReader,
    history_bound,
)
from domain.service import TaskService
from mcp_server.history_schemas import HistoryEntryOut, HistoryPageOut
from mcp_server.schemas import Omitted, output_schema, published
from mcp_server.tooling import READ, answer, domain_errors

LINES_IN_TEXT = 10  # the text names the newest entries; the structured content has the page

HistoryTaskId = Annotated[
    str | Omitted,
    Field(
        description="Default: all tasks",
        json_schema_extra=published(),
    ),
]
Since = Annotated[
    str | Omitted,
    Field(
        description="ISO date or date-time, inclusive",
        json_schema_extra=published(),
    ),
]
Until = Annotated[
    str | Omitted,
    Field(
        description="Exclusive",
        json_schema_extra=published(),
    ),
]
HistoryLimit = Annotated[int, Field(ge=1, le=200)]
HistoryCursor = Annotated[
    str | Omitted,
    Field(description="The last page's next_cursor", json_schema_extra=published()),
]


def register_history_tools(
    mcp: FastMCP, user: Callable[[], str], service: TaskService, history: HistoryReader
) -> None:
    """Add task_history to `mcp`, reading through `history` for the user `user()` names."""

    @mcp.tool(annotations=READ, output_schema=output_schema(HistoryPageOut))
    @domain_errors
    async def task_history(
        task_id: HistoryTaskId = None,
        since: Since = None,
        until: Until = None,
        limit: HistoryLimit = DEFAULT_HISTORY_LIMIT,
        cursor: HistoryCursor = None,
    ) -> ToolResult:
        """What changed, newest first: who, when, each field's old -> new."""
        who = user()
        query = HistoryQuery(
            user_id=who,
            task_id=task_id,
            since=history_bound(since, "since", service.user_zone),
            until=history_bound(until, "until", service.user_zone),
            limit=limit,
            cursor=cursor,
        )
        if task_id is not None:
            await service.get(who, task_id)  # another user's task is "not found", as elsewhere
        page = await history.history(query)
        shown = HistoryPageOut(
            entries=await _shaped_in_slices(page.entries), next_cursor=page.next_cursor
        )
        return answer(_text(shown, task_id), shown)


# Shaping a full page of the largest entries takes tens of ms: in slices of this many entries,
# with the event loop free between them, other users' calls go in the gaps (bench_fairness.py).
SHAPE_SLICE = 40


async def _shaped_in_slices(entries: Sequence[HistoryEntry]) -> list[HistoryEntryOut]:
    shaped: list[HistoryEntryOut] = []
    for start in range(0, len(entries), SHAPE_SLICE):
        if start:
            await asyncio.sleep(0)
        shaped += [HistoryEntryOut.of(entry) for entry in entries[start : start + SHAPE_SLICE]]
    return shaped


def _text(page: HistoryPageOut, task_id: str | None) -> str:
    scope = f"task {task_id}" if task_id else "your tasks"
    if not page.entries:
        return f"No changes to {scope} in this range."
    lines = [entry.line() for entry in page.entries[:LINES_IN_TEXT]]
    hidden = len(page.entries) - len(lines)
    tail = f" | … {hidden} more in the structured content" if hidden else ""
    more = "; more with next_cursor" if page.next_cursor else ""
    return (
        f"{len(page.entries)} change(s) to {scope}, newest first{more}: " + " | ".join(lines) + tail
    )
