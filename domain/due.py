"""When a task is due: an all-day date, or a moment kept as UTC plus its IANA time zone."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from domain.errors import ValidationFailed, echo
from domain.text import check_text

UTC = dt.UTC

DUE_FORMATS = "2026-12-01 (all day), 2026-12-01T17:00 with a timezone, or 2026-12-01T17:00:00+01:00"


@lru_cache(maxsize=512)
def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA zone called `name`, or a ValidationFailed naming `field`."""
    if not name or name != name.strip() or name.startswith(("/", ".")):
        raise ValidationFailed(field, f"{echo(name)} is not an IANA time zone", _ZONE_FIX)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed(field, f"{echo(name)} is not an IANA time zone", _ZONE_FIX) from None


_ZONE_FIX = "use a name from the IANA database such as Europe/Berlin, America/New_York or UTC"


def localize(wall: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """The UTC moment of a local wall time: a time in a DST gap moves forward, an ambiguous one
    takes its first occurrence."""
    # fold=0 applies the offset in force before a transition: a gap time lands after the gap,
    # a repeated time is read as the first of the two.
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC)


_ZERO = dt.timedelta(0)

# Every date and moment Dueflow accepts lies in these years, in UTC and as a wall time in its
# zone. The margin to the calendar's ends (years 1 and 9999) keeps everything computed from one
# (a reminder up to a year before, the next occurrences, the date in any user's zone, urgency)
# from overflowing.
EARLIEST_YEAR = 1900
LATEST_YEAR = 2999
SUPPORTED_YEARS = f"{EARLIEST_YEAR}..{LATEST_YEAR}"


def out_of_range(field: str, text: str) -> ValidationFailed:
    """The refusal of a date or moment outside SUPPORTED_YEARS."""
    return ValidationFailed(
        field,
        f"{text.strip()[:40]!r} is outside the supported years {SUPPORTED_YEARS}",
        f"give a date between {EARLIEST_YEAR}-01-01 and {LATEST_YEAR}-12-31",
    )


def supported(value: dt.datetime | dt.date, field: str, text: str) -> None:
    """Refuse a date or a wall time (naive, or aware in its own offset) outside SUPPORTED_YEARS."""
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise out_of_range(field, text)


def supported_moment(
    moment: dt.datetime, field: str, text: str, tz: ZoneInfo | None = None
) -> dt.datetime:
    """The UTC moment of aware `moment`, once it, its UTC time and its wall time in `tz` lie
    within SUPPORTED_YEARS."""
    supported(moment, field, text)
    try:
        utc = moment.astimezone(UTC)
        wall = utc.astimezone(tz) if tz is not None else utc
    except OverflowError:
        raise out_of_range(field, text) from None
    supported(utc, field, text)
    supported(wall, field, text)
    return utc


@dataclass(frozen=True, slots=True)
class Due:
    """An all-day `date`, or a moment `at` (aware, UTC); either way with the task's zone."""

    timezone: str
    date: dt.date | None = None
    at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if (self.date is None) == (self.at is None):
            raise ValueError("a Due is either all-day (date) or timed (at), not both or neither")
        if self.at is not None and self.at.tzinfo is not UTC and self.at.utcoffset() != _ZERO:
            raise ValueError("Due.at must be UTC")

    @property
    def all_day(self) -> bool:
        return self.date is not None

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    @property
    def instant(self) -> dt.datetime:
        """The UTC moment used to order and filter: an all-day date starts at local midnight."""
        if self.at is not None:
            return self.at
        assert self.date is not None
        return localize(dt.datetime.combine(self.date, dt.time()), self.tz)

    @property
    def local(self) -> dt.datetime | dt.date:
        """The due as the task's own zone shows it."""
        if self.at is not None:
            try:
                return self.at.astimezone(self.tz)
            except OverflowError:  # stored at the calendar's edge by an older version
                return self.at
        assert self.date is not None
        return self.date

    def is_overdue(
        self, now: dt.datetime, user_zone: ZoneInfo, today: dt.date | None = None
    ) -> bool:
        """Past due: a moment before now, or a date before today in the user's zone (`today`,
        when the caller has it already)."""
        if self.at is not None:
            return self.at < now
        assert self.date is not None
        return self.date < (today or now.astimezone(user_zone).date())

    def to_json(self) -> dict[str, Any]:
        if self.date is not None:
            return {"date": self.date.isoformat(), "timezone": self.timezone, "all_day": True}
        return {
            "datetime": self.local.isoformat(),
            "utc": iso_utc(self.instant),
            "timezone": self.timezone,
            "all_day": False,
        }


def iso_utc(moment: dt.datetime) -> str:
    """RFC 3339 in UTC with a Z, as every event and tool output writes moments."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    return moment.isoformat()[:-6] + "Z"  # drop the "+00:00" a UTC moment always ends with


def parse_moment(text: str, tz: ZoneInfo, field: str) -> dt.datetime:
    """An ISO 8601 date-time as UTC; one without an offset is wall time in `tz`. Refused
    outside SUPPORTED_YEARS."""
    try:
        value = dt.datetime.fromisoformat(check_text(text, field).strip())
    except ValueError:
        raise ValidationFailed(
            field,
            f"{echo(text)} is not an ISO 8601 date-time",
            "write it as 2026-12-01T17:00:00+01:00",
        ) from None
    if value.tzinfo is None:
        supported(value, field, text)
        return supported_moment(localize(value, tz), field, text)
    return supported_moment(value, field, text, tz)


def parse_due(text: str, timezone: str | None, default_timezone: str) -> Due:
    """Read `due` as an all-day date, a date-time with an offset, or a local date-time."""
    zone_name = timezone if timezone is not None else default_timezone
    tz = zone(zone_name, "timezone" if timezone is not None else "default timezone")
    raw = check_text(text, "due").strip()
    if not raw:
        raise ValidationFailed("due", "is empty", f"give {DUE_FORMATS}, or null to clear it")
    if "T" not in raw.upper() and " " not in raw and ":" not in raw:
        try:
            day = dt.date.fromisoformat(raw)
        except ValueError:
            pass
        else:
            supported(day, "due", text)
            return Due(timezone=zone_name, date=day)
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise ValidationFailed(
            "due", f"{echo(text)} is not an ISO 8601 date or date-time", f"give {DUE_FORMATS}"
        ) from None
    if value.tzinfo is None:
        supported(value, "due", text)
        return Due(timezone=zone_name, at=supported_moment(localize(value, tz), "due", text))
    return Due(timezone=zone_name, at=supported_moment(value, "due", text, tz))
