"""The arguments of the task tools, as their input schemas describe them to a client.

An argument left out is None to the tool. Where None means only that (add_task, the filters),
the schema is a plain optional property (`Omitted`); update_task's arguments that an explicit
null clears are nullable (`Clearable...`). Limits are the domain's, published for clients to
check before sending and enforced by the domain with its refusal (schemas.published).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from domain.batch import MAX_BATCH
from domain.model import MAX_DESCRIPTION, MAX_TAG, MAX_TAGS, MAX_TITLE
from domain.reminder_specs import MAX_REMINDERS
from mcp_server.schemas import Omitted, published

PriorityName = Literal["none", "low", "medium", "high", "urgent"]
StatusName = Literal["open", "completed", "deleted", "all"]
AnchorName = Literal["schedule", "completion"]

TaskId = Annotated[str, Field()]
OptionalTaskId = Annotated[str | Omitted, Field(json_schema_extra=published())]
_TITLE = Field(json_schema_extra=published(minLength=1, maxLength=MAX_TITLE))
Title = Annotated[str, _TITLE]
_DESCRIPTION = Field(json_schema_extra=published(maxLength=MAX_DESCRIPTION))
Description = Annotated[str | Omitted, _DESCRIPTION]
_DUE = Field(
    description="2026-12-01 (all day), 2026-12-01T17:00 (in timezone), or a phrase ('tomorrow"
    " 5pm') read in the user's zone",
    json_schema_extra=published(),
)
Due = Annotated[str | Omitted, _DUE]
_TIMEZONE = Field(description="IANA zone; default the user's", json_schema_extra=published())
Timezone = Annotated[str | Omitted, _TIMEZONE]
_PRIORITY = Field(json_schema_extra=published())
PriorityArg = Annotated[PriorityName | Omitted, _PRIORITY]
# a tag's own limit is on the items: a Field on the list would put it on the list
TagText = Annotated[str, Field(json_schema_extra=published(maxLength=MAX_TAG))]
_TAGS = Field(json_schema_extra=published(maxItems=MAX_TAGS))
Tags = Annotated[list[TagText] | Omitted, _TAGS]
_REMINDERS = Field(
    description="Before due (PT15M, P1D) or date-times",
    json_schema_extra=published(maxItems=MAX_REMINDERS),
)
Reminders = Annotated[list[str] | Omitted, _REMINDERS]
_RECURRENCE = Field(
    description="RRULE (FREQ=WEEKLY;BYDAY=MO) or phrase ('every weekday'); needs due",
    json_schema_extra=published(),
)
RecurrenceArg = Annotated[str | Omitted, _RECURRENCE]
_ANCHOR = Field(
    description="completion: next due counts from done",
    json_schema_extra=published(),
)
Anchor = Annotated[AnchorName | Omitted, _ANCHOR]

# update_task: an explicit null clears the field, so null is in the schema
# (their meaning is add_task's, which update_task's description points to)
ClearableDescription = Annotated[str | None, _DESCRIPTION]
ClearableDue = Annotated[
    str | None,
    Field(json_schema_extra=published()),
]
ClearableTimezone = Annotated[str | None, Field(json_schema_extra=published())]
ClearablePriority = Annotated[PriorityName | None, _PRIORITY]
ClearableTags = Annotated[
    list[TagText] | None,
    Field(description="Replaces all", json_schema_extra=published(maxItems=MAX_TAGS)),
]
ClearableReminders = Annotated[
    list[str] | None,
    Field(description="Replaces all", json_schema_extra=published(maxItems=MAX_REMINDERS)),
]
ClearableRecurrence = Annotated[str | None, Field(json_schema_extra=published())]
ClearableAnchor = Annotated[AnchorName | None, Field(json_schema_extra=published())]

StatusArg = Annotated[StatusName, Field()]
PriorityFilter = Annotated[
    PriorityName | list[PriorityName] | Omitted, Field(json_schema_extra=published())
]
AllTags = Annotated[
    list[str] | Omitted, Field(description="Has all", json_schema_extra=published())
]
AnyTags = Annotated[
    list[str] | Omitted, Field(description="Has any", json_schema_extra=published())
]
# the bounds of a listing: an ISO date (its start in the user's zone) or date-time
DueBefore = Annotated[str | Omitted, Field(description="Exclusive", json_schema_extra=published())]
DueAfter = Annotated[str | Omitted, Field(description="Inclusive", json_schema_extra=published())]
CompletedBefore = Annotated[
    str | Omitted, Field(description="Exclusive", json_schema_extra=published())
]
CompletedAfter = Annotated[
    str | Omitted, Field(description="Inclusive", json_schema_extra=published())
]
Overdue = Annotated[bool | Omitted, Field(json_schema_extra=published())]
Query = Annotated[
    str | Omitted, Field(description="In title or description", json_schema_extra=published())
]
Limit = Annotated[int, Field(ge=1, le=200)]
Cursor = Annotated[
    str | Omitted, Field(description="The last page's next_cursor", json_schema_extra=published())
]
# many tasks in one call: each item is an object with the single form's arguments
Items = Annotated[
    list[Annotated[dict[str, Any], WithJsonSchema({"type": "object"})]] | Omitted,
    Field(
        description="Many: objects with the arguments above",
        json_schema_extra=published(minItems=1, maxItems=MAX_BATCH),
    ),
]
TaskIds = Annotated[
    list[str] | Omitted,
    Field(json_schema_extra=published(minItems=1, maxItems=MAX_BATCH)),
]
