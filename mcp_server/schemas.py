"""What the tools' schemas say: the output models (each tool's outputSchema), the keywords an
argument publishes, and the rules that keep both portable across clients.

Portable means every client's schema dialect can read it, including those that map a tool
schema onto one `type` per value (the OpenAPI subset of Gemini function declarations): no
`type: [X, "null"]` arrays, no schema that constrains nothing, no remote `$ref`. A value that may
be null in an answer is `anyOf` a typed branch and `{"type": "null"}`; an argument whose None
only means "not given" is a plain optional property (`Omitted`). MCP Inspector's schema lint
checks exactly this, and tests/mcp/test_tool_schemas.py holds every tool to it.

Answers publish formats and enums, not the length limits arguments carry: a limit the domain
tightens later would make clients refuse to read a task stored under the earlier one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from enum import Enum
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, WithJsonSchema
from pydantic.config import JsonDict
from pydantic.json_schema import SkipJsonSchema

from domain.due import Due, iso_utc
from domain.model import Priority, Status, Task
from domain.ports import Page
from domain.query import Outlook
from domain.recurrence import RecurrenceAnchor

# An argument's None that means "not given": its schema shows only the value, as an optional
# property, with no null branch
Omitted = SkipJsonSchema[None]
# keywords that constrain one type of value: in a nullable value's schema they belong to its
# typed branch (an `enum` beside the `anyOf` would refuse the null)
_VALUE_KEYWORDS = frozenset(
    {"enum", "format", "pattern", "minLength", "maxLength", "minimum", "maximum", "items"}
    | {"minItems", "maxItems", "uniqueItems"}
)


def published(**keywords: Any) -> Callable[[JsonDict], None]:
    """An argument's json_schema_extra: JSON Schema `keywords` it publishes (limits the domain
    enforces with its own refusal, for a client to check before it sends; pydantic does not
    check them again), in the typed branch of a nullable argument."""

    def extra(schema: JsonDict) -> None:
        schema.update(keywords)
        if "default" in schema and schema["default"] is None:
            del schema["default"]  # "not given" says nothing a model needs to read
        _into_typed_branch(schema)

    return extra


def one_of(values: Iterable[Enum]) -> JsonDict:
    """The `enum` keyword of a string that is one of `values` (a domain enum's)."""
    return {"enum": [str(value.value) for value in values]}


# a moment as iso_utc writes it (RFC 3339, UTC, Z); a local one with its offset; a calendar date
MOMENT: JsonDict = {"format": "date-time"}
LOCAL: JsonDict = {"format": "date-time"}
DATE: JsonDict = {"format": "date"}
# any JSON value (a field's value before or after a change): each JSON type as its own branch
JSON_VALUE: dict[str, Any] = {
    "anyOf": [{"type": kind} for kind in ("string", "number", "boolean", "object", "array", "null")]
}
JsonValue = Annotated[Any, WithJsonSchema(JSON_VALUE)]


class DueOut(BaseModel):
    all_day: bool
    timezone: str = Field(description="IANA zone the due is read in")
    date: str | None = Field(
        default=None, description="All-day due date (YYYY-MM-DD)", json_schema_extra=DATE
    )
    datetime: str | None = Field(
        default=None, description="Local date-time with its offset", json_schema_extra=LOCAL
    )
    utc: str | None = Field(
        default=None, description="The due moment in UTC", json_schema_extra=MOMENT
    )


class ReminderOut(BaseModel):
    spec: str = Field(description="ISO 8601 duration before due, or an absolute UTC moment")
    fires_at: str | None = Field(description="When it fires, in UTC", json_schema_extra=MOMENT)


class RecurrenceOut(BaseModel):
    rule: str = Field(description="RFC 5545 RRULE")
    anchor: str = Field(
        description="'schedule' or 'completion'", json_schema_extra=one_of(RecurrenceAnchor)
    )
    series_id: str
    occurrence: int = Field(description="This occurrence's number in the series (1-based)", ge=1)
    start: str | None = Field(description="The series start (DTSTART), local wall time or date")
    exdates: list[str] = Field(description="Excluded occurrences, local wall time or dates")
    recurred_from: str | None = Field(description="The occurrence whose completion made this one")
    recurred_to: str | None = Field(description="The occurrence made when this one was completed")
    series_ended: bool = Field(description="Completing this occurrence ended the series")


class TaskOut(BaseModel):
    id: str
    title: str
    description: str
    status: str = Field(description="open | completed | deleted", json_schema_extra=one_of(Status))
    priority: str = Field(
        description="none | low | medium | high | urgent", json_schema_extra=one_of(Priority)
    )
    ical_priority: int = Field(
        description="iCalendar PRIORITY: 1 highest … 9 lowest, 0 none", ge=0, le=9
    )
    tags: list[str]
    due: DueOut | None
    overdue: bool
    urgency: float = Field(description="The urgency score list_tasks sorts by")
    reminders: list[ReminderOut]
    recurrence: RecurrenceOut | None
    created_at: str = Field(json_schema_extra=MOMENT)
    updated_at: str = Field(json_schema_extra=MOMENT)
    completed_at: str | None = Field(json_schema_extra=MOMENT)
    deleted_at: str | None = Field(json_schema_extra=MOMENT)
    version: int = Field(description="Pass as expected_version to update_task", ge=1)

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


class TaskSummary(BaseModel):
    """A task as listings show it, to pick one and act on it; get_task has the rest
    (description, due's zone and UTC moment, reminders, series, timestamps).

    Ten fields on purpose: a page of 50 goes into an agent's context, and every client checks
    each value against the outputSchema (the Python SDK's check of a 14-field page cost more
    than the server took to answer it)."""

    id: str
    title: str
    status: str = Field(json_schema_extra=one_of(Status))
    priority: str = Field(json_schema_extra=one_of(Priority))
    tags: list[str]
    due: str | None = Field(description="YYYY-MM-DD (all day) or local date-time with offset")
    overdue: bool
    urgency: float = Field(description="The urgency score list_tasks sorts by")
    recurrence: str | None = Field(description="The RRULE, for recurring tasks")
    version: int = Field(description="Pass as expected_version to update_task", ge=1)

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
    date: str | None = Field(
        default=None, description="All-day occurrence (YYYY-MM-DD)", json_schema_extra=DATE
    )
    datetime: str | None = Field(
        default=None, description="Local date-time with its offset", json_schema_extra=LOCAL
    )
    utc: str | None = Field(default=None, description="The moment in UTC", json_schema_extra=MOMENT)
    utc_offset: str | None = Field(
        default=None,
        description="The zone's UTC offset then",
        json_schema_extra={"pattern": "^[+-][0-9]{2}:[0-9]{2}$"},
    )

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
    order: list[str] = Field(description="The sort keys applied, with their directions")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


# what an outputSchema leaves out: pydantic's titles and defaults, descriptions, and bounds (a
# bound tightened later must not make a client refuse a task stored under the earlier one)
_NOT_IN_ANSWERS = frozenset({"title", "default", "description", "minimum", "maximum"})


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema as a tool's outputSchema: inlined (no `$ref`), without the
    `title` pydantic derives from each name ("Id", "Created At" say nothing the names do not),
    the `default` of an output field (an answer always carries it), the descriptions (every
    client pays for them in each tools/list, and no model reads them: docs/tools.md says what
    each field means) or numeric bounds (see _NOT_IN_ANSWERS), `additionalProperties: true`
    (the default), and each nullable value's own keywords in its typed branch."""
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
            if names or key not in _NOT_IN_ANSWERS
            if names or not (key == "additionalProperties" and value is True)
        }
        if not names:
            _into_typed_branch(node)
        return node

    result: dict[str, Any] = simplify(schema)
    return result


def _into_typed_branch(schema: JsonDict) -> None:
    """Move the value keywords of a nullable schema (`anyOf` one typed branch and null) into
    its typed branch."""
    options = schema.get("anyOf")
    if not isinstance(options, list) or {"type": "null"} not in options:
        return
    typed = [option for option in options if option != {"type": "null"}]
    if len(typed) != 1 or not isinstance(typed[0], dict):
        return
    branch = typed[0]
    for key in [key for key in schema if key in _VALUE_KEYWORDS]:
        branch[key] = schema.pop(key)


# A write answers the task as get_task answers it, or a list of them for a batch. The full task
# schema is declared once, on get_task: the MCP spec and the SDK resolve a `$ref` only within one
# tool's schema, so repeating it on every write cost 3 KB of each tools/list per tool. A write
# declares the fields a client can count on to find the task again.
TASK_REFERENCE: dict[str, Any] = {
    "type": "object",
    "required": ["id", "version"],
}


def written_schema(created: bool = False) -> dict[str, Any]:
    """The outputSchema of a write: `task` (one) or `tasks` (a batch, in the order given), and
    with `created`, whether each was created or replayed by its idempotency key."""
    properties: dict[str, Any] = {
        "task": TASK_REFERENCE,
        "tasks": {"type": "array", "items": TASK_REFERENCE},
    }
    if created:
        properties["created"] = {
            "anyOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "boolean"}}]
        }
    return {"type": "object", "properties": properties}
