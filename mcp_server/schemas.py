"""What the tools answer: pydantic output models (the tools' outputSchema)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from domain.due import iso_utc
from domain.model import Task
from domain.service import TaskService


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
    occurrence: int


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

    @classmethod
    def of(cls, task: Task, service: TaskService) -> TaskOut:
        snapshot = task.snapshot()
        return cls(
            id=task.id,
            title=task.title,
            description=task.description,
            status=task.status.value,
            priority=task.priority.value,
            ical_priority=task.priority.ical,
            tags=list(task.tags),
            due=DueOut(**snapshot["due"]) if task.due else None,
            overdue=service.is_overdue(task),
            urgency=service.urgency(task),
            reminders=[
                ReminderOut(
                    spec=r.spec, fires_at=iso_utc(at) if (at := r.fire_at(task.due)) else None
                )
                for r in task.reminders
            ],
            recurrence=RecurrenceOut(**snapshot["recurrence"]) if task.recurrence else None,
            created_at=snapshot["created_at"],
            updated_at=snapshot["updated_at"],
            completed_at=snapshot["completed_at"],
            deleted_at=snapshot["deleted_at"],
            version=task.version,
        )


class TaskResult(BaseModel):
    task: TaskOut


class AddResult(BaseModel):
    task: TaskOut
    created: bool = Field(description="False when an idempotency_key replayed an earlier call")


class TaskPage(BaseModel):
    tasks: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


class SortedPage(BaseModel):
    tasks: list[TaskOut]
    order: list[str] = Field(description="The sort keys applied, with their directions")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")
