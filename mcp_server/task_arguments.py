"""The arguments of the task tools, as their input schemas describe them to a client.

An argument left out is None to the tool. Where None means only that (add_task, the filters),
the schema is a plain optional property (`Omitted`); update_task's arguments that an explicit
null clears are nullable (`Clearable...`). Limits are the domain's, published for clients to
check before sending and enforced by the domain with its refusal (schemas.published).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from domain.model import MAX_DESCRIPTION, MAX_TAG, MAX_TAGS, MAX_TITLE
from domain.reminder_specs import MAX_REMINDERS
from mcp_server.schemas import Omitted, published

PriorityName = Literal["none", "low", "medium", "high", "urgent"]
StatusName = Literal["open", "completed", "deleted", "all"]
AnchorName = Literal["schedule", "completion"]

TaskId = Annotated[str, Field(description="The task's id, as add_task or list_tasks gave it")]
_TITLE = Field(
    description="Short name of the task, 1-500 characters",
    json_schema_extra=published(minLength=1, maxLength=MAX_TITLE),
)
Title = Annotated[str, _TITLE]
_DESCRIPTION = Field(
    description="Free text, up to 10,000 characters",
    json_schema_extra=published(maxLength=MAX_DESCRIPTION),
)
Description = Annotated[str | Omitted, _DESCRIPTION]
_DUE = Field(
    description="ISO 8601: a date (2026-12-01, all day), a date-time with offset"
    " (2026-12-01T17:00:00+01:00), or a local date-time (2026-12-01T17:00) read in timezone."
    " A plain English phrase ('tomorrow 5pm', 'next friday') is read in the user's zone and"
    " echoed back as the date it resolved to; an ambiguous phrase is refused",
    json_schema_extra=published(),
)
Due = Annotated[str | Omitted, _DUE]
_TIMEZONE = Field(
    description="IANA zone for due and recurrence, e.g. Europe/Berlin; default: the user's",
    json_schema_extra=published(),
)
Timezone = Annotated[str | Omitted, _TIMEZONE]
_PRIORITY = Field(description="Priority; default none", json_schema_extra=published())
PriorityArg = Annotated[PriorityName | Omitted, _PRIORITY]
# a tag's own limit is on the items: a Field on the list would put it on the list
TagText = Annotated[str, Field(json_schema_extra=published(maxLength=MAX_TAG))]
_TAGS = Field(
    description="Up to 50 labels of at most 64 characters; stored in lower case",
    json_schema_extra=published(maxItems=MAX_TAGS),
)
Tags = Annotated[list[TagText] | Omitted, _TAGS]
_REMINDERS = Field(
    description="ISO 8601 durations before due (PT15M, P1D) or absolute date-times; an all-day"
    " task's relative reminders count back from 09:00 local on its date",
    json_schema_extra=published(maxItems=MAX_REMINDERS),
)
Reminders = Annotated[list[str] | Omitted, _REMINDERS]
_RECURRENCE = Field(
    description="RFC 5545 RRULE, e.g. FREQ=WEEKLY;BYDAY=MO,WE (optionally a second line"
    " EXDATE:20261224T090000); or a phrase ('every weekday', 'every 2 weeks on monday and"
    " wednesday', 'last day of every month'), echoed back as the RRULE. Needs a due; check"
    " a rule first with preview_recurrence",
    json_schema_extra=published(),
)
RecurrenceArg = Annotated[str | Omitted, _RECURRENCE]
_ANCHOR = Field(
    description="schedule (default): next occurrence follows the rule's slots;"
    " completion: measured from when the task is completed",
    json_schema_extra=published(),
)
Anchor = Annotated[AnchorName | Omitted, _ANCHOR]

# update_task: an explicit null clears the field, so null is in the schema
ClearableDescription = Annotated[str | None, _DESCRIPTION]
ClearableDue = Annotated[str | None, _DUE]
ClearableTimezone = Annotated[str | None, _TIMEZONE]
ClearablePriority = Annotated[PriorityName | None, _PRIORITY]
ClearableTags = Annotated[
    list[TagText] | None,
    Field(description="Replaces all tags", json_schema_extra=published(maxItems=MAX_TAGS)),
]
ClearableReminders = Annotated[
    list[str] | None,
    Field(
        description="Replaces all reminders", json_schema_extra=published(maxItems=MAX_REMINDERS)
    ),
]
ClearableRecurrence = Annotated[str | None, _RECURRENCE]
ClearableAnchor = Annotated[AnchorName | None, _ANCHOR]

StatusArg = Annotated[
    StatusName, Field(description="Which tasks: open (default), completed, deleted, all")
]
PriorityFilter = Annotated[
    PriorityName | list[PriorityName] | Omitted,
    Field(description="Only these priorities", json_schema_extra=published()),
]
AllTags = Annotated[
    list[str] | Omitted,
    Field(description="Only tasks carrying all of these tags", json_schema_extra=published()),
]
AnyTags = Annotated[
    list[str] | Omitted,
    Field(description="Only tasks carrying any of these tags", json_schema_extra=published()),
]
DueBefore = Annotated[
    str | Omitted,
    Field(
        description="Due strictly before this ISO date/date-time (a date means its start)",
        json_schema_extra=published(),
    ),
]
DueAfter = Annotated[
    str | Omitted,
    Field(
        description="Due at or after this ISO date/date-time (a date means its start)",
        json_schema_extra=published(),
    ),
]
Overdue = Annotated[
    bool | Omitted,
    Field(
        description="true: only open tasks past due; false: only the others",
        json_schema_extra=published(),
    ),
]
Query = Annotated[
    str | Omitted,
    Field(description="Text to find in title or description", json_schema_extra=published()),
]
Limit = Annotated[int, Field(description="Page size, 1-200", ge=1, le=200)]
Cursor = Annotated[
    str | Omitted,
    Field(description="next_cursor of the previous page", json_schema_extra=published()),
]
