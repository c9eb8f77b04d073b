"""Task history: the audit log as a user reads it, newest first, a page at a time.

`HistoryReader` is the port; `domain.adapters.history_sql.SqlHistory` reads the database and
`domain.adapters.dapr_history.DaprHistory` asks the audit app by Dapr service invocation. Both
answer the same `HistoryPage` for the same `HistoryQuery`, and both refuse a bad cursor with the
same ValidationFailed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from domain.due import iso_utc
from domain.errors import DueflowError, ValidationFailed
from domain.model import check_task_id
from domain.pages import fitting
from domain.query import (
    MAX_LIMIT,
    cursor_moment,
    cursor_number,
    decode_cursor,
    encode_cursor,
    moment_bound,
)
from domain.work import count_characters

DEFAULT_HISTORY_LIMIT = 50
CURSOR_KIND = "history"
_CURSOR_FIELDS = {"t": str, "i": int, "f": str}
_MAX_ENTRY_ID = 2**63 - 1


class HistoryUnavailable(DueflowError):
    """The history could not be read right now; try again shortly."""


@dataclass(frozen=True, kw_only=True)
class HistoryEntry:
    """One recorded event: who changed which task when, and each field's old and new value."""

    id: int
    event_id: str
    event_type: str
    user_id: str
    task_id: str
    task_title: str | None
    sequence: int
    occurred_at: dt.datetime
    recorded_at: dt.datetime
    changes: dict[str, list[Any]]
    source: str | None
    correlation_id: str | None
    causation_id: str | None
    details: dict[str, Any] = field(default_factory=dict)

    def text_size(self) -> int:
        """About how many characters this entry takes in an answer (see domain.pages)."""
        carried = json.dumps([self.changes, self.details], default=str, ensure_ascii=False)
        return 400 + len(self.task_title or "") + len(carried)

    def to_json(self) -> dict[str, Any]:
        """The entry as the history HTTP API carries it."""
        return {
            "id": self.id,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "user_id": self.user_id,
            "task_id": self.task_id,
            "task_title": self.task_title,
            "sequence": self.sequence,
            "occurred_at": iso_utc(self.occurred_at),
            "recorded_at": iso_utc(self.recorded_at),
            "changes": self.changes,
            "source": self.source,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "details": self.details,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        """Read an entry of the history HTTP API; KeyError/ValueError/TypeError if malformed."""
        return cls(
            id=int(data["id"]),
            event_id=str(data["event_id"]),
            event_type=str(data["event_type"]),
            user_id=str(data["user_id"]),
            task_id=str(data["task_id"]),
            task_title=data.get("task_title"),
            sequence=int(data["sequence"]),
            occurred_at=_instant(data["occurred_at"]),
            recorded_at=_instant(data["recorded_at"]),
            changes=dict(data["changes"]),
            source=data.get("source"),
            correlation_id=data.get("correlation_id"),
            causation_id=data.get("causation_id"),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True, kw_only=True)
class HistoryQuery:
    """Which entries of one user: of one task or all, at or after `since`, before `until`."""

    user_id: str
    task_id: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = DEFAULT_HISTORY_LIMIT
    cursor: str | None = None

    def __post_init__(self) -> None:
        if self.task_id is not None:
            check_task_id(self.task_id)
        if not 1 <= self.limit <= MAX_LIMIT:
            raise ValidationFailed("limit", f"is {self.limit}", f"use 1 to {MAX_LIMIT}")
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ValidationFailed(name, "has no UTC offset", "give an aware moment")
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValidationFailed(
                "until",
                f"({iso_utc(self.until)}) is not after since ({iso_utc(self.since)})",
                "give an until later than since, or leave one out",
            )

    def fingerprint(self) -> str:
        """The filters a cursor belongs to: a cursor is refused under other filters."""
        raw = repr((self.user_id, self.task_id, self.since, self.until))
        return hashlib.sha256(raw.encode()).hexdigest()[:16]

    def position(self) -> tuple[dt.datetime, int] | None:
        """The (occurred_at, id) the page starts after, from the cursor; None on the first."""
        if self.cursor is None:
            return None
        try:
            data = decode_cursor(self.cursor, CURSOR_KIND, _CURSOR_FIELDS)
            if data["f"] != self.fingerprint():
                raise bad_history_cursor()
            return cursor_moment(data["t"]), cursor_number(data["i"], _MAX_ENTRY_ID)
        except ValidationFailed:
            raise bad_history_cursor() from None

    def page(self, found: list[HistoryEntry]) -> HistoryPage:
        """The page of entries read with limit + 1: at most `limit` of them and about
        PAGE_CHARACTERS, with a cursor when more follow."""
        sizes = [entry.text_size() for entry in found[: self.limit]]
        kept = fitting(sizes)
        count_characters(sum(sizes[:kept]))  # what the call is charged for (domain.work)
        if kept == len(found):
            return HistoryPage(found, None)
        entries = found[:kept]
        return HistoryPage(entries, self.cursor_after(entries[-1]))

    def cursor_after(self, entry: HistoryEntry) -> str:
        return encode_cursor(
            CURSOR_KIND,
            {"t": iso_utc(entry.occurred_at), "i": entry.id, "f": self.fingerprint()},
        )


@dataclass(frozen=True, slots=True)
class HistoryPage:
    entries: list[HistoryEntry]
    next_cursor: str | None


class HistoryReader(Protocol):
    async def history(self, query: HistoryQuery) -> HistoryPage:
        """The entries `query` asks for, newest first; ValidationFailed for a bad cursor,
        HistoryUnavailable when the history cannot be reached."""
        ...


def bad_history_cursor() -> ValidationFailed:
    return ValidationFailed(
        "cursor",
        "is not a cursor this history issued",
        "pass next_cursor from the previous page unchanged, with the same task_id, since and until",
    )


def history_bound(raw: str | None, field_name: str, user_zone: ZoneInfo) -> dt.datetime | None:
    """A since/until as a user writes it (see moment_bound), refused in the history's words."""
    return moment_bound(
        raw,
        field_name,
        user_zone,
        "write it as 2026-11-23 (the start of that day) or 2026-11-23T17:00:00+01:00",
    )


def _instant(text: Any) -> dt.datetime:
    value = dt.datetime.fromisoformat(str(text))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return value.astimezone(dt.UTC)
