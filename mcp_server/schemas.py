"""What the tools answer: pydantic output models (the tools' outputSchema)."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from domain.due import Due, iso_utc
from domain.model import Task
from domain.ports import Page
from domain.query import Outlook


class DueOut(BaseModel):
    all_day: bool
    timezone: str = Field(description="IANA zone the due is read in")
    date: str | None = Field(default=None, description="All-day due date (YYYY-MM-DD)")
    datetime: str | None = Field(default=None, description="Local date-time with its offset")
    utc: str | None = Field(default=None, description="The due moment in UTC")


class ReminderOut(BaseModel):
    spec: str = Field(description="ISO 8601 duration before due, or an absolute UTC moment")
    fires_at: str | None = Field(description="When it fires, in UTC")


class RecurrenceOut(BaseModel):
    rule: str = Field(description="RFC 5545 RRULE")
    anchor: str = Field(description="'schedule' or 'completion'")
    series_id: str
    occurrence: int = Field(description="This occurrence's number in the series (1-based)")
    start: str | None = Field(description="The series start (DTSTART), local wall time or date")
    exdates: list[str] = Field(description="Excluded occurrences, local wall time or dates")
    recurred_from: str | None = Field(description="The occurrence whose completion made this one")
    recurred_to: str | None = Field(description="The occurrence made when this one was completed")
    series_ended: bool = Field(description="Completing this occurrence ended the series")


class TaskOut(BaseModel):
    id: str
    title: str
    description: str
    status: str = Field(description="open | completed | deleted")
    priority: str = Field(description="none | low | medium | high | urgent")
    ical_priority: int = Field(description="iCalendar PRIORITY: 1 highest … 9 lowest, 0 none")
    tags: list[str]
    due: DueOut | None
    overdue: bool
    urgency: float = Field(description="The sort_tasks urgency score")
    reminders: list[ReminderOut]
    recurrence: RecurrenceOut | None
    created_at: str
    updated_at: str
    completed_at: str | None
    deleted_at: str | None
    version: int = Field(description="Pass as expected_version to update_task")

    @staticmethod
    def document(task: Task, outlook: Outlook) -> dict[str, Any]:
        """The task as a TaskOut document, overdue and urgency as `outlook` sees them.

        A plain dict, for the reason TaskSummary.page gives; the tests check every answer
        against the outputSchema."""
        snapshot = task.snapshot()
        due = snapshot["due"]
        return {
            "id": task.id,
            "title": task.title,
            "description": task.description,
            "status": snapshot["status"],
            "priority": snapshot["priority"],
            "ical_priority": snapshot["ical_priority"],
            "tags": snapshot["tags"],
            "due": (
                {
                    "all_day": due["all_day"],
                    "timezone": due["timezone"],
                    "date": due.get("date"),
                    "datetime": due.get("datetime"),
                    "utc": due.get("utc"),
                }
                if due
                else None
            ),
            "overdue": outlook.overdue(task),
            "urgency": outlook.urgency(task),
            "reminders": [
                {"spec": r.spec, "fires_at": iso_utc(at) if (at := r.fire_at(task.due)) else None}
                for r in task.reminders
            ],
            "recurrence": snapshot["recurrence"],
            "created_at": snapshot["created_at"],
            "updated_at": snapshot["updated_at"],
            "completed_at": snapshot["completed_at"],
            "deleted_at": snapshot["deleted_at"],
            "version": task.version,
        }


class TaskResult(BaseModel):
    task: TaskOut


class AddResult(BaseModel):
    task: TaskOut
    created: bool = Field(description="False when an idempotency_key replayed an earlier call")


class TaskSummary(BaseModel):
    """A task as listings show it, to pick one and act on it; get_task has the rest
    (description, due's zone and UTC moment, reminders, series, timestamps).

    Ten fields on purpose: a page of 50 goes into an agent's context, and every client checks
    each value against the outputSchema (the Python SDK's check of a 14-field page cost more
    than the server took to answer it)."""

    id: str
    title: str
    status: str
    priority: str
    tags: list[str]
    due: str | None = Field(description="YYYY-MM-DD (all day) or local date-time with offset")
    overdue: bool
    urgency: float = Field(description="The sort_tasks urgency score")
    recurrence: str | None = Field(description="The RRULE, for recurring tasks")
    version: int = Field(description="Pass as expected_version to update_task")

    @staticmethod
    def page(page: Page, user_zone: ZoneInfo) -> list[dict[str, Any]]:
        """The page's tasks as TaskSummary documents, overdue and urgency as of the page's moment.

        Plain dicts: validating 50 models the server itself just built, then dumping them again,
        cost about as much as reading the tasks. The tests check every answer against the
        outputSchema (the MCP client does on each call), so the two cannot drift apart."""
        outlook = Outlook.at(page.now, user_zone)
        return [
            {
                "id": task.id,
                "title": task.title,
                "status": task.status.value,
                "priority": task.priority.value,
                "tags": list(task.tags),
                "due": task.due.local.isoformat() if task.due else None,
                "overdue": outlook.overdue(task),
                "urgency": outlook.urgency(task),
                "recurrence": task.recurrence.rule if task.recurrence else None,
                "version": task.version,
            }
            for task in page.tasks
        ]


class OccurrenceOut(BaseModel):
    all_day: bool
    timezone: str
    date: str | None = Field(default=None, description="All-day occurrence (YYYY-MM-DD)")
    datetime: str | None = Field(default=None, description="Local date-time with its offset")
    utc: str | None = Field(default=None, description="The moment in UTC")
    utc_offset: str | None = Field(default=None, description="The zone's UTC offset then")

    @classmethod
    def of(cls, due: Due) -> OccurrenceOut:
        local = due.local
        offset = local.strftime("%z") if isinstance(local, dt.datetime) else ""
        return cls(**due.to_json(), utc_offset=f"{offset[:3]}:{offset[3:]}" if offset else None)


class PreviewResult(BaseModel):
    recurrence: str = Field(description="The RRULE (and EXDATEs) the input resolved to")
    occurrences: list[OccurrenceOut]


class TaskPage(BaseModel):
    tasks: list[TaskSummary]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class SortedPage(BaseModel):
    tasks: list[TaskSummary]
    order: list[str] = Field(description="The sort keys applied, with their directions")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema, inlined, with `X | None` written as `type: [X, "null"]` and
    without the `title` pydantic derives from each name.

    Clients validate every answer against this schema. Pydantic's `anyOf` form for nullable
    fields makes a validator build and discard an error per null field, and every keyword of a
    property costs a validator a lookup per value: on a 50-task page these dominated the
    client's cost. The simplified schema accepts exactly the same documents; the titles
    ("Id", "Created At") said nothing the names do not.
    """
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def simplify(node: Any, names: bool = False) -> Any:
        """`names`: node maps property names to schemas (its keys are not keywords)."""
        if isinstance(node, list):
            return [simplify(item) for item in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = definitions[node["$ref"].rsplit("/", 1)[-1]]
            extra = {k: v for k, v in node.items() if k != "$ref"}
            return simplify({**target, **extra})
        node = {
            key: simplify(value, names=key == "properties" and not names)
            for key, value in node.items()
            if names or key != "title"
        }
        options = node.get("anyOf")
        if isinstance(options, list) and len(options) == 2 and {"type": "null"} in options:
            other = next(option for option in options if option != {"type": "null"})
            kind = other.get("type")
            if isinstance(kind, str) and "anyOf" not in other:
                merged = {key: value for key, value in node.items() if key != "anyOf"}
                merged.update(other)
                merged["type"] = [kind, "null"]
                return merged
        return node

    result: dict[str, Any] = simplify(schema)
    return result
