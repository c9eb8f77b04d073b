"""What task_history answers: entries with who, when and what changed (old -> new), as models and
as one line of text each."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, Field

from domain.due import iso_utc
from domain.events import EventType
from domain.history import HistoryEntry
from mcp_server.schemas import MOMENT, JsonValue, one_of

# who made a change, as people say it; an unknown source is shown as it is
SOURCES = {
    "dueflow.mcp_server": "MCP",
    "dueflow.api": "the task API",
    "dueflow.recurrence": "the recurrence worker",
    "dueflow.reminders": "the reminders worker",
    "dueflow.notifications": "the notifications worker",
}
# fields a creation lists in its one-line summary (the structured changes have them all)
_CREATION_FIELDS = ("due", "priority", "tags", "reminders", "recurrence")
_MAX_VALUE_TEXT = 80


class FieldChangeOut(BaseModel):
    field: str
    old: JsonValue = Field(description="The value before (null: none)")
    new: JsonValue = Field(description="The value after (null: none)")


class HistoryEntryOut(BaseModel):
    event_id: str
    event_type: str = Field(
        description="TASK_CREATED, TASK_UPDATED, TASK_COMPLETED, TASK_REOPENED, TASK_DELETED,"
        " TASK_RESTORED, TASK_RECURRED, or a reminder event (REMINDER_...)",
        json_schema_extra=one_of(EventType),
    )
    task_id: str
    task_title: str | None = Field(description="The task's title after this change")
    sequence: int = Field(description="The task's version after this change")
    occurred_at: str = Field(description="When the change was made (UTC)", json_schema_extra=MOMENT)
    recorded_at: str = Field(
        description="When the audit log recorded it (UTC)", json_schema_extra=MOMENT
    )
    user: str = Field(description="The user whose task it is and who made the change")
    source: str | None = Field(description="What made it: dueflow.mcp_server, dueflow.recurrence")
    actor: str = Field(description="Who, in words: the user and the source")
    changes: list[FieldChangeOut] = Field(description="Each changed field: old -> new")
    details: dict[str, Any] = Field(
        description="What the event carries besides the changes, e.g. a reminder and its delivery"
    )
    next_task_id: str | None = Field(
        description="TASK_RECURRED: the next occurrence created from this one"
    )
    correlation_id: str | None = Field(description="The request this change came from")
    causation_id: str | None = Field(description="The event that caused this change")
    summary: str = Field(description="What happened, in one line")

    @classmethod
    def of(cls, entry: HistoryEntry) -> HistoryEntryOut:
        changes = [
            FieldChangeOut(field=name, old=_pair(pair)[0], new=_pair(pair)[1])
            for name, pair in entry.changes.items()
        ]
        return cls(
            event_id=entry.event_id,
            event_type=entry.event_type,
            task_id=entry.task_id,
            task_title=entry.task_title,
            sequence=entry.sequence,
            occurred_at=iso_utc(entry.occurred_at),
            recorded_at=iso_utc(entry.recorded_at),
            user=entry.user_id,
            source=entry.source,
            actor=actor(entry),
            changes=changes,
            details=entry.details,
            next_task_id=next_task_id(entry),
            correlation_id=entry.correlation_id,
            causation_id=entry.causation_id,
            summary=summary(entry),
        )

    def line(self) -> str:
        """The entry in one line: when, what, which task, who, and what changed."""
        title = f" {self.task_title!r}" if self.task_title else ""
        return (
            f"{self.occurred_at} {self.event_type}{title} (task {self.task_id}, v{self.sequence})"
            f" by {self.actor}: {self.summary}"
        )


class HistoryPageOut(BaseModel):
    entries: list[HistoryEntryOut] = Field(description="Newest first")
    next_cursor: str | None = Field(description="Pass as cursor for the next page; null at the end")


def actor(entry: HistoryEntry) -> str:
    if entry.source is None:
        return entry.user_id
    return f"{entry.user_id} via {SOURCES.get(entry.source, entry.source)}"


def next_task_id(entry: HistoryEntry) -> str | None:
    if entry.event_type != "TASK_RECURRED":
        return None
    new = _pair(entry.changes.get("recurred_to"))[1]
    return str(new) if new else None


def summary(entry: HistoryEntry) -> str:
    """What changed, in words: old -> new per field, the hand-off of a recurrence, a reminder."""
    kind = entry.event_type
    if kind == "TASK_CREATED":
        return _created(entry)
    if kind == "TASK_RECURRED":
        return _recurred(entry)
    parts = [_change_text(name, pair) for name, pair in entry.changes.items()]
    parts += [_detail_text(key, value) for key, value in entry.details.items()]
    words = kind.lower().replace("_", " ")
    if kind.startswith("TASK_") and kind != "TASK_UPDATED":
        words = kind.removeprefix("TASK_").lower()
    if kind == "TASK_UPDATED":
        return "; ".join(parts) or "no field changed"
    return f"{words}: {'; '.join(parts)}" if parts else words


def _created(entry: HistoryEntry) -> str:
    new = {name: _pair(pair)[1] for name, pair in entry.changes.items()}
    text = f"created {new.get('title', entry.task_title)!r}"
    shown = [
        f"{name} {_value_text(new[name])}"
        for name in _CREATION_FIELDS
        if new.get(name) and new[name] != "none"  # priority none is no news
    ]
    recurrence = new.get("recurrence")
    if isinstance(recurrence, dict) and recurrence.get("recurred_from"):
        shown.append(f"next occurrence of task {recurrence['recurred_from']}")
    return f"{text} ({', '.join(shown)})" if shown else text


def _recurred(entry: HistoryEntry) -> str:
    parts = []
    following = next_task_id(entry)
    if following:
        parts.append(f"next occurrence is task {following}")
    if _pair(entry.changes.get("series_ended"))[1]:
        parts.append("the series ended")
    skipped = _pair(entry.changes.get("skipped_occurrences"))[1]
    if isinstance(skipped, list) and skipped:
        parts.append(f"{len(skipped)} past occurrence(s) skipped")
    return "recurred: " + ("; ".join(parts) or "nothing to create")


def _change_text(name: str, pair: Any) -> str:
    old, new = _pair(pair)
    if isinstance(old, dict) and isinstance(new, dict) and name != "due":
        inner = [
            f"{name}.{key}: {_value_text(old.get(key))} -> {_value_text(new.get(key))}"
            for key in dict.fromkeys([*old, *new])
            if old.get(key) != new.get(key)
        ]
        return "; ".join(inner)
    return f"{name}: {_value_text(old)} -> {_value_text(new)}"


def _detail_text(key: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = ", ".join(
            f"{k} {_value_text(v)}" for k, v in value.items() if v is not None and v != ""
        )
        return f"{key} ({inner})" if inner else key
    return f"{key} {_value_text(value)}"


def _value_text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dict) and "timezone" in value:  # a due
        when = value.get("date") or value.get("datetime") or value.get("utc")
        return f"{when} {value['timezone']}"
    if isinstance(value, dict) and "rule" in value:  # a recurrence
        return str(value["rule"])
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _MAX_VALUE_TEXT else text[: _MAX_VALUE_TEXT - 1] + "…"


def _pair(pair: Any) -> tuple[Any, Any]:
    if isinstance(pair, list | tuple) and len(pair) == 2:
        return pair[0], pair[1]
    return None, pair
