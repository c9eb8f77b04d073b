"""RFC 5545 recurrence rules, read on local wall time in the task's zone."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from types import FrameType
from typing import TypeVar
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from domain.due import (
    EARLIEST_YEAR,
    LATEST_YEAR,
    SUPPORTED_YEARS,
    UTC,
    Due,
    localize,
    supported,
    supported_moment,
    zone,
)
from domain.errors import ValidationFailed, echo
from domain.work import count_walk

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
# BYMONTH=2;BYMONTHDAY=30 takes seconds); a search that runs past this much work (CPU time of
# the walk's thread) is refused instead. Work, not wall time: on a busy machine a walk that
# waits for a core must not turn a good rule into "yields no occurrence".
_SEARCH_SECONDS = 1.0
# however starved of CPU the walk is, its caller waits no longer than this (wall time)
_WALL_SECONDS = 15.0
# how many Python calls a rule walk makes between two moments it gives the GIL away (see _take)
_GIVE_WAY_EVERY = 50
# what one call may ask of a series: its text (an RRULE is short; the rest is EXDATEs) and the
# EXDATEs it keeps, which every walk of the series checks and every event of the task carries
MAX_RECURRENCE_TEXT = 20_000
MAX_EXDATES = 500


class RecurrenceAnchor(StrEnum):
    """Where the next occurrence is measured from."""

    SCHEDULE = "schedule"
    COMPLETION = "completion"


@dataclass(frozen=True, slots=True)
class Recurrence:
    """A series: its normalised RRULE, its anchor, the id every occurrence shares, its start
    (DTSTART as local wall time, or a date when all-day; None: the current due) and its EXDATEs
    (the same form as start)."""

    rule: str
    anchor: RecurrenceAnchor
    series_id: str
    start: dt.datetime | dt.date | None = None
    exdates: tuple[dt.datetime | dt.date, ...] = ()


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
            raise ValidationFailed("recurrence", f"part {echo(piece)} is not KEY=VALUE", _FIX)
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
    if "BYDAY" in parts:
        _check_weekdays(parts)
    if parts.get("WKST", "MO") not in _WEEKDAYS:
        raise ValidationFailed(
            "recurrence", f"WKST={parts['WKST']} is not a weekday", "use WKST=MO or WKST=SU"
        )
    if "COUNT" in parts and "UNTIL" in parts:
        raise ValidationFailed("recurrence", "has both COUNT and UNTIL", "keep one of them")
    return parts


_WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAY = re.compile(r"^([+-]?\d{1,2})?(MO|TU|WE|TH|FR|SA|SU)$")


def _check_weekdays(parts: dict[str, str]) -> None:
    """BYDAY entries are weekdays, their ordinals within the month (1..5) under FREQ=MONTHLY or
    with BYMONTH, else within the year (1..53); dateutil fails inside on any other."""
    in_month = parts["FREQ"] == "MONTHLY" or (parts["FREQ"] == "YEARLY" and "BYMONTH" in parts)
    highest = 5 if in_month else 53
    for item in parts["BYDAY"].split(","):
        match = _WEEKDAY.match(item)
        if match is None:
            raise ValidationFailed(
                "recurrence", f"BYDAY={item} is not a weekday", "use MO, TU, WE, TH, FR, SA, SU"
            )
        if match[1] is not None and not 1 <= abs(int(match[1])) <= highest:
            raise ValidationFailed(
                "recurrence",
                f"BYDAY={item} is out of range",
                f"use ordinals 1..{highest} or -{highest}..-1"
                + (" (within a month)" if in_month else " (within a year)"),
            )


def _check_until(parts: dict[str, str]) -> None:
    """UNTIL, when there is one, lies within the supported years (see domain.due)."""
    until = parts.get("UNTIL")
    if (
        until is not None
        and until[:4].isdigit()
        and not EARLIEST_YEAR <= int(until[:4]) <= LATEST_YEAR
    ):
        raise ValidationFailed(
            "recurrence",
            f"UNTIL={until} is outside the supported years {SUPPORTED_YEARS}",
            f"give an UNTIL between {EARLIEST_YEAR}0101 and {LATEST_YEAR}1231, or leave it out",
        )


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
    """The RRULE text of `parts`, in canonical key order."""
    return ";".join(f"{key}={parts[key]}" for key in _KEY_ORDER if key in parts)


def build_rule(rule: str, due: Due) -> rrule:
    """The dateutil rule expanded on the due's local wall time (naive), UNTIL moved to it."""
    return _build(normalize_rule(rule), _wall_start(due), due.tz)


def validate_rule(rule: str, due: Due | None) -> str:
    """The normalised rule, once it parses and yields at least one occurrence."""
    if due is None:
        raise ValidationFailed(
            "recurrence", "needs a due date to anchor the series", "set due as well"
        )
    parts = normalize_rule(rule)
    _check_month_days(parts)
    _check_until(parts)
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
    found = _take(iter(built), _deadline(), limit=1)
    return found[0] if found else None


def _wall_start(due: Due) -> dt.datetime:
    local = due.local
    if isinstance(local, dt.datetime):
        return local.replace(tzinfo=None)
    return dt.datetime.combine(local, dt.time())


def _wall_until(until: str, tz: ZoneInfo) -> str:
    try:
        if len(until) == 8:
            day = dt.datetime.strptime(until, "%Y%m%d")
            return day.replace(hour=23, minute=59, second=59).strftime("%Y%m%dT%H%M%S")
        if until.endswith("Z"):
            moment = dt.datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
            return moment.astimezone(tz).strftime("%Y%m%dT%H%M%S")
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


# --- the engine: series expanded on local wall time, turned into Dues -------------------------

Wall = dt.datetime | dt.date
"""A local wall time (naive, in the due's zone) for a timed series, or a date for an all-day one."""

_T = TypeVar("_T")
_ICAL_DATE = re.compile(r"\d{8}")
_ICAL_WALL = re.compile(r"\d{8}T\d{6}")
_ICAL_UTC = re.compile(r"\d{8}T\d{6}Z")
# one property per line; lines glued with a space ("RRULE:... EXDATE:...") are split apart too
_LINES = re.compile(r"\r?\n|\s+(?=(?:RRULE|EXDATE|EXRULE|RDATE|DTSTART)\s*[:;])", re.IGNORECASE)
_SUB_DAILY = ("BYHOUR", "BYMINUTE", "BYSECOND")


@dataclass(frozen=True, slots=True)
class NextOccurrence:
    """What follows a completed occurrence: the next due, or the end of the series."""

    due: Due | None
    skipped: tuple[Due, ...]
    number: int
    ended: bool


def series_start(due: Due) -> Wall:
    """The form `Recurrence.start` takes for a series starting at `due`."""
    local = due.local
    if isinstance(local, dt.datetime):
        return local.replace(tzinfo=None)
    return local


def parse_recurrence(text: str, due: Due) -> tuple[str, tuple[Wall, ...]]:
    """The normalised rule and the EXDATEs (local wall or dates) of a rule anchored on `due`."""
    if len(text) > MAX_RECURRENCE_TEXT:
        raise ValidationFailed(
            "recurrence",
            f"has {len(text)} characters",
            f"keep it to {MAX_RECURRENCE_TEXT}: one RRULE and at most {MAX_EXDATES} EXDATEs",
        )
    if not text.strip():
        normalize_rule(text)  # refuses the empty text with its own words
    rules: list[str] = []
    exdates: list[Wall] = []
    for line in _LINES.split(text.strip()):
        line = line.strip()
        if not line:
            continue
        name, params, value = _property(line)
        if name == "RRULE":
            rules.append(value)
        elif name == "EXDATE":
            exdates.extend(_exdates(params, value, due))
        elif name == "DTSTART":
            raise ValidationFailed(
                "recurrence", "carries a DTSTART", "leave DTSTART out: the due starts the series"
            )
        else:
            raise ValidationFailed(
                "recurrence", f"has a {name} line", "give one RRULE and optional EXDATE lines"
            )
    if len(rules) > 1:
        raise ValidationFailed("recurrence", "has more than one RRULE", "give a single RRULE")
    if not rules:
        raise ValidationFailed("recurrence", "has no RRULE", _FIX)
    parts = normalize_rule(rules[0])
    _check_month_days(parts)
    _check_until(parts)
    if due.all_day:
        _check_all_day(parts)
    rule = rule_text(parts)
    found = _sorted_walls(exdates)
    if len(found) > MAX_EXDATES:
        raise ValidationFailed(
            "recurrence",
            f"has {len(found)} EXDATEs",
            f"keep at most {MAX_EXDATES}; end the series with UNTIL or COUNT and start a new one",
        )
    if not occurrences(Recurrence(rule, RecurrenceAnchor.SCHEDULE, "", None, found), due, None, 1):
        raise ValidationFailed(
            "recurrence",
            "yields no occurrence on or after due",
            "check COUNT, UNTIL, EXDATE and the BY parts against the due date",
        )
    return rule, found


def series_text(rec: Recurrence) -> str:
    """The rule and its EXDATEs as text that parse_recurrence reads back."""
    if not rec.exdates:
        return rec.rule
    return f"{rec.rule}\nEXDATE:{','.join(_ical(x) for x in _sorted_walls(rec.exdates))}"


def occurrences(rec: Recurrence, due: Due, after: Due | None, count: int) -> list[Due]:
    """Up to `count` occurrences strictly after `after` (from the series start when None)."""
    if count <= 0:
        return []
    parts = normalize_rule(rec.rule)
    deadline = _deadline()
    slots: Iterator[Due] = _slots(_build(parts, _start_wall(rec, due), due.tz), rec, due)
    if after is not None:
        slots = (slot for slot in slots if _later(slot, after))
    return _take(slots, deadline, limit=count)


def next_occurrence(
    rec: Recurrence,
    current: Due,
    current_number: int,
    completed_at: dt.datetime,
    now: dt.datetime,
) -> NextOccurrence:
    """What follows completing the occurrence due at `current`; moments are aware."""
    if rec.anchor is RecurrenceAnchor.COMPLETION:
        return _after_completion(rec, current, current_number, completed_at)
    return _on_schedule(rec, current, current_number, now)


def preview(text: str, due: Due, count: int) -> list[Due]:
    """The first `count` occurrences of the rule in `text` anchored on `due`."""
    rule, exdates = parse_recurrence(text, due)
    return occurrences(
        Recurrence(rule, RecurrenceAnchor.SCHEDULE, "", None, exdates), due, None, count
    )


def _on_schedule(rec: Recurrence, current: Due, number: int, now: dt.datetime) -> NextOccurrence:
    parts = normalize_rule(rec.rule)
    remaining: int | None = None
    if rec.start is None and "COUNT" in parts:
        # the series restarts at `current`, so COUNT is spent by occurrence numbers instead
        remaining = int(parts.pop("COUNT")) - number
        if remaining <= 0:
            return NextOccurrence(None, (), number, True)
    today = now.astimezone(current.tz).date()

    def due_yet(slot: Due) -> bool:
        if slot.date is not None:
            return slot.date >= today
        return slot.instant >= now

    built = _build(parts, _start_wall(rec, current), current.tz)
    deadline = _deadline()
    slots: Iterator[Due] = (s for s in _slots(built, rec, current) if _later(s, current))
    if remaining is not None:
        slots = itertools.islice(slots, remaining)
    found = _take(slots, deadline, enough=due_yet)
    if found and due_yet(found[-1]):
        skipped = tuple(found[:-1])
        return NextOccurrence(found[-1], skipped, number + 1 + len(skipped), False)
    # every remaining slot is already past: the series ran out while nobody looked
    return NextOccurrence(None, tuple(found), number + len(found), True)


def _after_completion(
    rec: Recurrence, current: Due, number: int, completed_at: dt.datetime
) -> NextOccurrence:
    parts = normalize_rule(rec.rule)
    if "COUNT" in parts and number >= int(parts["COUNT"]):
        return NextOccurrence(None, (), number, True)
    parts.pop("COUNT", None)
    tz = current.tz
    done = completed_at.astimezone(tz)
    start = _start_wall(rec, current)
    if current.all_day:
        anchor = dt.datetime.combine(done.date(), dt.time())
        done_due = Due(current.timezone, date=done.date())
    else:
        anchor = dt.datetime.combine(done.date(), start.time())
        if parts["FREQ"] == "HOURLY":
            # an hourly rule counts its hours from the completion, not from the start's hour
            anchor = done.replace(minute=start.minute, second=start.second, tzinfo=None)
            if anchor > done.replace(tzinfo=None, microsecond=0):
                anchor -= dt.timedelta(hours=1)
        done_due = Due(current.timezone, at=completed_at.astimezone(UTC))
    base = done_due if _later(done_due, current) else current
    try:
        reanchored = _build(parts, anchor, tz)
    except ValidationFailed:
        reanchored = None  # e.g. an HOURLY BYHOUR set the completion hour can never reach
    if reanchored is not None:
        deadline = _deadline()
        slots = (s for s in _slots(reanchored, rec, current) if _later(s, base))
        found = _take(slots, deadline, limit=1)
        if found:
            return NextOccurrence(found[0], (), number + 1, False)
    # nothing from the completion day: past UNTIL (the series' own slots end there too), or a rule
    # that never matches from that day (FREQ=DAILY;INTERVAL=7;BYDAY=MO re-anchored on a Tuesday)
    deadline = _deadline()
    own = _build(parts, start, tz)
    found = _take((s for s in _slots(own, rec, current) if _later(s, base)), deadline, limit=1)
    if found:
        return NextOccurrence(found[0], (), number + 1, False)
    return NextOccurrence(None, (), number, True)


def _build(parts: dict[str, str], start: dt.datetime, tz: ZoneInfo) -> rrule:
    """The dateutil rule on naive local wall time from `start`, UNTIL moved to that wall time."""
    wall_parts = dict(parts)
    if "UNTIL" in wall_parts:
        wall_parts["UNTIL"] = _wall_until(wall_parts["UNTIL"], tz)
    try:
        built = rrulestr(rule_text(wall_parts), dtstart=start)
    except (ValueError, TypeError, KeyError) as exc:
        raise ValidationFailed("recurrence", f"does not parse ({exc})", _FIX) from None
    assert isinstance(built, rrule)
    return built


def _start_wall(rec: Recurrence, due: Due) -> dt.datetime:
    """The series start as dateutil's naive DTSTART, in the form the due's kind needs."""
    start = rec.start
    if start is None:
        return _wall_start(due)
    if isinstance(start, dt.datetime):
        if start.tzinfo is not None:
            start = start.astimezone(due.tz).replace(tzinfo=None)
        if due.all_day:
            return dt.datetime.combine(start.date(), dt.time())
        return start
    if due.all_day:
        return dt.datetime.combine(start, dt.time())
    local = due.local
    assert isinstance(local, dt.datetime)
    return dt.datetime.combine(start, local.time().replace(tzinfo=None))


def _slots(built: rrule, rec: Recurrence, due: Due) -> Iterator[Due]:
    """The rule's wall times as Dues in the due's zone: EXDATEs removed, each moment once (walked
    through _take, which ends the walk at its deadline however the caller filters the slots)."""
    tz, name = due.tz, due.timezone
    walls = {_as_wall(x, tz) for x in rec.exdates}
    ex_walls = {x for x in walls if isinstance(x, dt.datetime)}
    ex_days = {x for x in walls if not isinstance(x, dt.datetime)}
    # an EXDATE may name a slot in a DST gap by its wall time or by the time it is shown at
    ex_moments = set() if due.all_day else {localize(x, tz) for x in ex_walls}
    if due.all_day:
        ex_days |= {x.date() for x in ex_walls}
    last_day: dt.date | None = None
    last_moment: dt.datetime | None = None
    wall: dt.datetime
    for wall in built:
        if wall.year > LATEST_YEAR:
            return  # a series ends where the supported years do
        day = wall.date()
        if day in ex_days or wall in ex_walls:
            continue
        if due.all_day:
            # a sub-daily rule on an all-day series meets each day once
            if last_day is None or day > last_day:
                last_day = day
                yield Due(name, date=day)
            continue
        try:
            moment = localize(wall, tz)
        except OverflowError:
            return  # the last days of year 9999 have no UTC moment
        if moment in ex_moments:
            continue
        # wall times in a DST gap move forward and can meet or pass the next slot; keep order
        if last_moment is None or moment > last_moment:
            last_moment = moment
            yield Due(name, at=moment)


def _later(slot: Due, ref: Due) -> bool:
    """Whether `slot` is strictly after `ref`; a date counts as its whole day."""
    if slot.at is not None and ref.at is not None:
        return slot.at > ref.at
    return _day(slot, slot.tz) > _day(ref, slot.tz)


def _day(due: Due, tz: ZoneInfo) -> dt.date:
    if due.date is not None:
        return due.date
    return due.instant.astimezone(tz).date()


def _deadline() -> float:
    """The wall-clock moment a search's caller stops waiting (its work is bounded in _take)."""
    return time.monotonic() + _WALL_SECONDS


def _take(
    items: Iterator[_T],
    deadline: float,
    *,
    limit: int | None = None,
    enough: Callable[[_T], bool] | None = None,
) -> list[_T]:
    """Items up to `limit` or the first that is `enough`; what was found if the search runs out
    of time: _SEARCH_SECONDS of its own CPU time, or `deadline` on the wall clock.

    dateutil walks period by period without yielding while a rule does not match (up to year
    9999), so the walk runs in a thread of its own whose trace function ends it at `deadline`
    (at its next Python call); the caller waits for it at most until then. The wait still
    blocks the calling thread, so the use cases call what expands a rule from a worker thread
    (asyncio.to_thread), never on the event loop.
    """
    found: list[_T] = []
    failure: list[Exception] = []
    calls = itertools.count()

    work_ends = [0.0]  # the walk thread's CPU time at which it stops, set when it starts
    walked = [_SEARCH_SECONDS]  # the walk's CPU time, once it has ended

    def stop_at_deadline(frame: FrameType, event: str, arg: object) -> None:
        if next(calls) % _GIVE_WAY_EVERY == 0:
            # reading a thread's CPU clock is a system call: once in so many Python calls
            if time.thread_time() > work_ends[0] or time.monotonic() > deadline:
                raise _OutOfTime
            # a long walk holds the GIL for up to the switch interval (5 ms) each time the
            # event loop's thread wants it back, many times per request: let it go now
            time.sleep(0)

    def search() -> None:
        began = time.thread_time()
        work_ends[0] = began + _SEARCH_SECONDS
        sys.settrace(stop_at_deadline)
        try:
            for item in items:
                found.append(item)
                if (limit is not None and len(found) >= limit) or (
                    enough is not None and enough(item)
                ):
                    return
        except _OutOfTime:
            return
        except Exception as exc:  # handed to the caller's thread below
            failure.append(exc)
        finally:
            sys.settrace(None)
            walked[0] = time.thread_time() - began

    worker = threading.Thread(target=search, daemon=True, name="rrule-search")
    worker.start()
    worker.join(max(0.0, deadline - time.monotonic()))
    count_walk(walked[0])  # a walk still running is counted at its whole budget
    if worker.is_alive():
        return list(found)
    if failure:
        raise failure[0]
    return found


class _OutOfTime(Exception):
    """A rule's walk ran past its deadline (raised inside the walk by its trace function)."""


def _property(line: str) -> tuple[str, list[str], str]:
    """A content line's name, parameters and value; a bare 'FREQ=...' is an RRULE."""
    head, sep, value = line.partition(":")
    if not sep:
        return "RRULE", [], line
    name, *params = (piece.strip() for piece in head.split(";"))
    name = name.upper()
    if name not in ("RRULE", "EXDATE", "EXRULE", "RDATE", "DTSTART"):
        raise ValidationFailed("recurrence", f"line {echo(line)} is not an RRULE or EXDATE", _FIX)
    return name, params, value.strip()


def _exdates(params: list[str], value: str, due: Due) -> list[Wall]:
    """EXDATE values as the series keeps them: local wall time in the due's zone, or dates."""
    source: ZoneInfo | None = None
    for param in params:
        key, _, setting = param.partition("=")
        if key.upper() == "TZID":
            source = zone(setting.strip(), "recurrence")
        elif key.upper() != "VALUE":
            raise ValidationFailed(
                "recurrence",
                f"EXDATE parameter {echo(param)} is not supported",
                "use EXDATE:20261225",
            )
    found: list[Wall] = []
    for item in value.split(","):
        text = item.strip().upper()
        try:
            if _ICAL_DATE.fullmatch(text):
                day = dt.datetime.strptime(text, "%Y%m%d").date()
                supported(day, "recurrence", f"EXDATE {item.strip()}")
                found.append(day)
                continue
            if _ICAL_UTC.fullmatch(text):
                wall = _local_wall(dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ"), UTC, due.tz)
            elif _ICAL_WALL.fullmatch(text):
                wall = dt.datetime.strptime(text, "%Y%m%dT%H%M%S")
                # kept as written in the due's own zone: a wall time in a DST gap still matches
                wall = wall if source is None else _local_wall(wall, source, due.tz)
            else:
                raise ValueError(text)
            supported_moment(localize(wall, due.tz), "recurrence", f"EXDATE {item.strip()}", due.tz)
        except (ValueError, OverflowError):
            raise ValidationFailed(
                "recurrence",
                f"EXDATE {echo(item.strip())} is not a date or date-time",
                "write EXDATE:20261225 (all day), 20261225T090000 (local) or 20261225T080000Z",
            ) from None
        found.append(wall.date() if due.all_day else wall)
    return found


def _local_wall(wall: dt.datetime, source: dt.tzinfo, tz: ZoneInfo) -> dt.datetime:
    """A wall time read in `source`, as the wall clock in `tz` shows that moment."""
    moment = wall.replace(tzinfo=source, fold=0)
    return moment.astimezone(tz).replace(tzinfo=None)


def _check_all_day(parts: dict[str, str]) -> None:
    if parts["FREQ"] == "HOURLY" or any(key in parts for key in _SUB_DAILY):
        raise ValidationFailed(
            "recurrence",
            "repeats within a day but the due is all-day",
            "give the due a time of day, or drop FREQ=HOURLY and BYHOUR/BYMINUTE/BYSECOND",
        )


def _as_wall(value: Wall, tz: ZoneInfo) -> Wall:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _wall_key(value: Wall) -> tuple[dt.date, dt.time, bool]:
    if isinstance(value, dt.datetime):
        return value.date(), value.time(), True
    return value, dt.time(), False


def _sorted_walls(values: Iterable[Wall]) -> tuple[Wall, ...]:
    return tuple(sorted(set(values), key=_wall_key))


def _ical(value: Wall) -> str:
    if isinstance(value, dt.datetime):
        return value.strftime("%Y%m%dT%H%M%S")
    return value.strftime("%Y%m%d")
