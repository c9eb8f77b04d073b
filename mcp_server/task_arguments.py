"""The arguments of the task tools, as their input schemas describe them to a client."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

PriorityName = Literal["none", "low", "medium", "high", "urgent"]
StatusName = Literal["open", "completed", "deleted", "all"]
AnchorName = Literal["schedule", "completion"]

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
