"""Reminders: a duration before the due moment, or an absolute moment."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass

from domain.due import UTC, Due, iso_utc, localize, parse_moment, zone
from domain.errors import ValidationFailed, echo

MAX_REMINDERS = 20
MAX_LEAD = dt.timedelta(days=365)
# An all-day task has no time of its own; its relative reminders count back from this local time.
ALL_DAY_REFERENCE = dt.time(9, 0)

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
# Longer than any duration a tool accepts (a reminder or snooze up to 365 days, a listing up to
# 366): refused while still a number, before a timedelta could overflow.
MAX_DURATION = dt.timedelta(days=3660)
_MAX_DURATION_TEXT = 40
_SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
_FIX = "use an ISO 8601 duration before due such as PT15M, PT2H or P1D, or a date-time"


@dataclass(frozen=True, slots=True)
class Reminder:
    """Either `before` the due moment, or `at` an absolute UTC moment."""

    before: dt.timedelta | None = None
    at: dt.datetime | None = None

    @property
    def spec(self) -> str:
        """The canonical text of this reminder, as stored and echoed."""
        if self.at is not None:
            return iso_utc(self.at)
        assert self.before is not None
        return format_duration(self.before)

    def fire_at(self, due: Due | None) -> dt.datetime | None:
        """The UTC moment this reminder fires, or None when it is relative and nothing is due."""
        if self.at is not None:
            return self.at
        if due is None:
            return None
        assert self.before is not None
        try:
            return reference_moment(due) - self.before
        except OverflowError:
            # only a due stored before dates were held to SUPPORTED_YEARS can be this close to
            # year 1; a moment before the calendar starts has passed, so nothing is scheduled
            return None


def reference_moment(due: Due) -> dt.datetime:
    """The moment relative reminders count back from."""
    if due.at is not None:
        return due.at
    assert due.date is not None
    return localize(dt.datetime.combine(due.date, ALL_DAY_REFERENCE), due.tz)


def format_duration(value: dt.timedelta) -> str:
    total = int(value.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    text = "P" + (f"{days}D" if days else "")
    clock = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    clock += f"{seconds}S" if seconds else ""
    return text + ("T" + clock if clock else "") if (days or clock) else "PT0S"


def parse_duration(text: str, field: str = "reminders", fix: str = _FIX) -> dt.timedelta:
    """An ISO 8601 duration of weeks, days, hours, minutes and seconds, at most MAX_DURATION."""
    match = _DURATION.match(text) if len(text) <= _MAX_DURATION_TEXT else None
    if match is None or text in ("P", "PT") or text.endswith("T"):
        if re.match(r"^P(\d+Y|\d+M)", text):
            raise ValidationFailed(
                field, f"{echo(text)} uses years or months, whose length varies", fix
            )
        raise ValidationFailed(field, f"{text[:40]!r} is not an ISO 8601 duration", fix)
    parts = {name: int(value or 0) for name, value in match.groupdict().items()}
    # counted in whole seconds first: a timedelta of 10**11 hours raises OverflowError
    seconds = sum(parts[name] * _SECONDS[name] for name in _SECONDS)
    if seconds > MAX_DURATION.total_seconds():
        raise ValidationFailed(field, f"{echo(text)} is longer than {MAX_DURATION.days} days", fix)
    return dt.timedelta(seconds=seconds)


def parse_reminders(values: Sequence[str], due: Due | None, timezone: str) -> tuple[Reminder, ...]:
    """Read reminder specs; a relative one needs a due, and duplicates collapse into one."""
    if len(values) > MAX_REMINDERS:
        raise ValidationFailed(
            "reminders", f"has {len(values)} entries", f"keep at most {MAX_REMINDERS}"
        )
    seen: dict[str, Reminder] = {}
    for raw in values:
        text = raw.strip().upper() if raw.strip().upper().startswith(("P", "-P")) else raw.strip()
        if text.startswith("-P"):
            raise ValidationFailed(
                "reminders", f"{echo(raw)} is negative: reminders fire before due", _FIX
            )
        if text.startswith("P"):
            before = parse_duration(text)
            if before > MAX_LEAD:
                raise ValidationFailed(
                    "reminders", f"{echo(raw)} is more than 365 days before due", _FIX
                )
            if due is None:
                raise ValidationFailed(
                    "reminders",
                    f"{echo(raw)} counts back from due, but the task has no due",
                    "set due, or give the reminder as an absolute date-time",
                )
            reminder = Reminder(before=before)
        else:
            reminder = Reminder(at=parse_moment(text, zone(timezone), "reminders"))
        seen.setdefault(reminder.spec, reminder)
    return tuple(sorted(seen.values(), key=lambda r: (r.at is None, r.spec)))


def reminder_from_spec(spec: str) -> Reminder:
    """Rebuild a stored reminder from its canonical text."""
    if spec.startswith("P"):
        return Reminder(before=parse_duration(spec))
    return Reminder(at=dt.datetime.fromisoformat(spec).astimezone(UTC))
