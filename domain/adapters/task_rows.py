"""Tasks to and from rows of the `tasks` table, decoded in one pass.

Rows come as the driver gives them (task_queries.RAW_TASK): SQLite's text, PostgreSQL's native
values. Decoding a row here is one call, where SQLAlchemy's type processing makes one per value.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from domain.due import Due
from domain.model import Priority, Status, Task
from domain.recurrence import Recurrence, RecurrenceAnchor
from domain.reminder_specs import reminder_from_spec


def task_values(task: Task) -> dict[str, Any]:
    """The `tasks` row of `task`, by column name."""
    due = task.due
    rec = task.recurrence
    return {
        "id": task.id,
        "user_id": task.user_id,
        "title": task.title,
        "description": task.description,
        "status": task.status.value,
        "priority_rank": task.priority.rank,
        "tags": list(task.tags),
        "due_at": due.instant if due else None,
        "due_date": due.date if due else None,
        "due_all_day": bool(due and due.all_day),
        "timezone": due.timezone if due else None,
        "reminders": [r.spec for r in task.reminders],
        "recurrence_rule": task.recurrence.rule if task.recurrence else None,
        "recurrence_anchor": task.recurrence.anchor.value if task.recurrence else None,
        "series_id": task.recurrence.series_id if task.recurrence else None,
        "occurrence": task.occurrence,
        "recurrence_start": _wall_text(rec.start) if rec else None,
        "recurrence_exdates": [_wall_text(day) for day in rec.exdates] if rec else [],
        "recurred_from": task.recurred_from,
        "recurred_to": task.recurred_to,
        "series_ended": task.series_ended,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "completed_at": task.completed_at,
        "deleted_at": task.deleted_at,
        "version": task.version,
    }


def task_from_row(row: Sequence[Any]) -> Task:
    """A task from a row of RAW_TASK (the `tasks` columns in table order): the driver's values,
    as SQLite or PostgreSQL gives them."""
    # long only because it names all 26 columns: one unpacking beats 26 lookups on every row
    (
        task_id,
        user_id,
        title,
        description,
        status,
        priority_rank,
        tags,
        due_at,
        due_date,
        due_all_day,
        timezone,
        reminders,
        recurrence_rule,
        recurrence_anchor,
        series_id,
        occurrence,
        recurrence_start,
        recurrence_exdates,
        recurred_from,
        recurred_to,
        series_ended,
        created_at,
        updated_at,
        completed_at,
        deleted_at,
        version,
    ) = row
    due = None
    if timezone is not None:
        if due_all_day:
            due = Due(timezone=timezone, date=_date(due_date))
        else:
            due = Due(timezone=timezone, at=_moment(due_at))
    recurrence = None
    if recurrence_rule is not None:
        recurrence = Recurrence(
            rule=recurrence_rule,
            anchor=RecurrenceAnchor(recurrence_anchor or "schedule"),
            series_id=series_id or task_id,
            start=_wall_value(recurrence_start),
            exdates=tuple(_wall_value(day) for day in _json_list(recurrence_exdates)),
        )
    specs = _json_list(reminders)
    return Task(
        id=task_id,
        user_id=user_id,
        title=title,
        description=description,
        status=_STATUS[status],
        priority=Priority.from_rank(priority_rank),
        tags=tuple(_json_list(tags)),
        due=due,
        reminders=tuple(reminder_from_spec(spec) for spec in specs) if specs else (),
        recurrence=recurrence,
        created_at=_moment(created_at),
        updated_at=_moment(updated_at),
        completed_at=_moment(completed_at) if completed_at is not None else None,
        deleted_at=_moment(deleted_at) if deleted_at is not None else None,
        version=version,
        occurrence=occurrence,
        recurred_from=recurred_from,
        recurred_to=recurred_to,
        series_ended=bool(series_ended),
    )


def stored_size(row: Any) -> int:
    """About how many characters a RAW_TASK row holds: its long texts (what decoding costs)."""
    exdates = row[17]
    listed = len(exdates) if isinstance(exdates, str) else 24 * len(exdates or ())
    return len(row[2]) + len(row[3] or "") + listed


def _moment(value: Any) -> dt.datetime:
    """A stored UTC moment: SQLite's text (no zone; see UTCDateTime) or PostgreSQL's datetime."""
    if isinstance(value, str):
        # parsing with the offset appended is cheaper than .replace(tzinfo=...) afterwards
        return dt.datetime.fromisoformat(value + "+00:00")
    moment: dt.datetime = value.astimezone(dt.UTC)
    return moment


def _date(value: Any) -> dt.date:
    return dt.date.fromisoformat(value) if isinstance(value, str) else value


def _json_list(value: Any) -> list[Any]:
    """A JSON list column: SQLite's text, or the list PostgreSQL's driver already decoded."""
    if value is None:
        return []
    if isinstance(value, str):
        # raw_decode skips json.loads' checks, which cost more than parsing a short list; the
        # values are SQLAlchemy's own json.dumps output
        decoded: list[Any] = _JSON.raw_decode(value)[0]
        return decoded
    listed: list[Any] = value
    return listed


_JSON = json.JSONDecoder()


# a dict lookup, where calling the enum class would cost more, once per listed row
_STATUS = {status.value: status for status in Status}


def _wall_text(value: dt.datetime | dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _wall_value(text: str | None) -> Any:
    """A stored series start or exdate: a naive local datetime, or a date."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text) if "T" in text else dt.date.fromisoformat(text)
