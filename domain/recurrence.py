"""RFC 5545 recurrence rules, read on local wall time in the task's zone."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from enum import StrEnum

from dateutil.rrule import rrule, rrulestr

from domain.due import Due
from domain.errors import ValidationFailed

ALLOWED_FREQ = ("YEARLY", "MONTHLY", "WEEKLY", "DAILY", "HOURLY")
_KEY_ORDER = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYMONTH",
    "BYWEEKNO",
    "BYYEARDAY",
    "BYMONTHDAY",
    "BYDAY",
    "BYHOUR",
    "BYMINUTE",
    "BYSECOND",
    "BYSETPOS",
    "WKST",
)
_FIX = "give an RFC 5545 RRULE such as FREQ=WEEKLY;BYDAY=MO,WE or FREQ=MONTHLY;BYMONTHDAY=-1"
_DAYS_IN_MONTH = {1: 31, 2: 29, 3: 31, 4: 30, 5: 31, 6: 30, 7: 31, 8: 31, 9: 30, 10: 31, 11: 30}
# dateutil walks period by period until year 9999 when a rule can never match (FREQ=DAILY;
# BYMONTH=2;BYMONTHDAY=30 takes seconds); a search that runs past this is refused instead.
_SEARCH_SECONDS = 1.0


class RecurrenceAnchor(StrEnum):
    """Where the next occurrence is measured from."""

    SCHEDULE = "schedule"
    COMPLETION = "completion"


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A series: its normalised RRULE, its anchor, and the id every occurrence shares."""

    rule: str
    anchor: RecurrenceAnchor
    series_id: str


def normalize_rule(text: str) -> dict[str, str]:
    """Split an RRULE into upper-case parts, checking the shape but not the semantics."""
    body = text.strip()
    if body.upper().startswith("RRULE:"):
        body = body[6:]
    if not body:
        raise ValidationFailed("recurrence", "is empty", f"{_FIX}, or null for no recurrence")
    parts: dict[str, str] = {}
    for piece in body.split(";"):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        key, value = key.strip().upper(), value.strip().upper()
        if not sep or not value:
            raise ValidationFailed("recurrence", f"part {piece!r} is not KEY=VALUE", _FIX)
        if key not in _KEY_ORDER:
            raise ValidationFailed("recurrence", f"{key} is not an RRULE part", _FIX)
        if key in parts:
            raise ValidationFailed("recurrence", f"{key} appears twice", "give each part once")
        parts[key] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise ValidationFailed("recurrence", "has no FREQ", _FIX)
    if freq not in ALLOWED_FREQ:
        raise ValidationFailed(
            "recurrence",
            f"FREQ={freq} is not supported",
            "use FREQ=HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY",
        )
    for key, value in parts.items():
        if key in _RANGES:
            _check_range(key, value)
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationFailed("recurrence", "has both COUNT and UNTIL", "keep one of them")
    return parts


# RFC 5545 ranges: (lowest, highest, whether negative values count from the end)
_RANGES = {
    "INTERVAL": (1, 10_000, False),
    "COUNT": (1, 100_000, False),
    "BYMONTH": (1, 12, False),
    "BYWEEKNO": (1, 53, True),
    "BYYEARDAY": (1, 366, True),
    "BYMONTHDAY": (1, 31, True),
    "BYHOUR": (0, 23, False),
    "BYMINUTE": (0, 59, False),
    "BYSECOND": (0, 59, False),
    "BYSETPOS": (1, 366, True),
}


def _check_range(key: str, value: str) -> None:
    low, high, signed = _RANGES[key]
    for item in value.split(","):
        try:
            number = int(item)
        except ValueError:
            raise ValidationFailed(
                "recurrence", f"{key}={value} is not a list of whole numbers", _FIX
            ) from None
        magnitude = abs(number) if signed else number
        if not low <= magnitude <= high or (number < 0 and not signed):
            span = f"{low}..{high}" + (f" or -{high}..-{low}" if signed else "")
            raise ValidationFailed(
                "recurrence", f"{key}={item} is out of range", f"use {key} values in {span}"
            )


def rule_text(parts: dict[str, str]) -> str:
    return ";".join(f"{key}={parts[key]}" for key in _KEY_ORDER if key in parts)


def build_rule(rule: str, due: Due) -> rrule:
    """The dateutil rule expanded on the due's local wall time (naive), UNTIL moved to it."""
    parts = normalize_rule(rule)
    start = _wall_start(due)
    until = parts.get("UNTIL")
    if until is not None:
        parts["UNTIL"] = _wall_until(until, due)
    try:
        built = rrulestr(rule_text(parts), dtstart=start)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationFailed("recurrence", f"does not parse ({exc})", _FIX) from None
    assert isinstance(built, rrule)
    return built


def validate_rule(rule: str, due: Due | None) -> str:
    """The normalised rule, once it parses and yields at least one occurrence."""
    if due is None:
        raise ValidationFailed(
            "recurrence", "needs a due date to anchor the series", "set due as well"
        )
    parts = normalize_rule(rule)
    _check_month_days(parts)
    built = build_rule(rule, due)
    if first_occurrence(built) is None:
        raise ValidationFailed(
            "recurrence",
            "yields no occurrence on or after due",
            "check COUNT, UNTIL and the BY parts against the due date",
        )
    return rule_text(parts)


def first_occurrence(built: rrule) -> dt.datetime | None:
    """The first occurrence, searched with a time bound (see _SEARCH_SECONDS)."""
    found: list[dt.datetime | None] = []

    def search() -> None:
        found.append(next(iter(built), None))

    worker = threading.Thread(target=search, daemon=True, name="rrule-first-occurrence")
    worker.start()
    worker.join(_SEARCH_SECONDS)
    return found[0] if found else None


def _wall_start(due: Due) -> dt.datetime:
    local = due.local
    if isinstance(local, dt.datetime):
        return local.replace(tzinfo=None)
    return dt.datetime.combine(local, dt.time())


def _wall_until(until: str, due: Due) -> str:
    try:
        if len(until) == 8:
            day = dt.datetime.strptime(until, "%Y%m%d")
            return day.replace(hour=23, minute=59, second=59).strftime("%Y%m%dT%H%M%S")
        if until.endswith("Z"):
            moment = dt.datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            return moment.astimezone(due.tz).strftime("%Y%m%dT%H%M%S")
        return dt.datetime.strptime(until, "%Y%m%dT%H%M%S").strftime("%Y%m%dT%H%M%S")
    except ValueError:
        raise ValidationFailed(
            "recurrence",
            f"UNTIL={until} is not a date or UTC date-time",
            "write UNTIL as 20261231 or 20261231T235959Z",
        ) from None


def _check_month_days(parts: dict[str, str]) -> None:
    if "BYMONTH" not in parts or "BYMONTHDAY" not in parts:
        return
    try:
        months = [int(m) for m in parts["BYMONTH"].split(",")]
        days = [int(d) for d in parts["BYMONTHDAY"].split(",")]
    except ValueError:
        return  # dateutil reports the malformed number with its own words
    if not any(abs(d) <= _DAYS_IN_MONTH.get(m, 31) for m in months for d in days):
        raise ValidationFailed(
            "recurrence",
            "BYMONTHDAY never falls in the BYMONTH months",
            "pick days that exist in those months (BYMONTHDAY=-1 means the last day)",
        )
