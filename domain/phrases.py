"""English phrases for `recurrence` and `due`, read strictly: one that needs a guess is refused.

The grammar is small on purpose. Every phrase either maps to exactly one RRULE or date, or is
refused with a fix that names the RRULE / ISO form, so an agent never gets a silently guessed
series or due date. The resolved RRULE / date is what callers echo back.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Iterable
from typing import NoReturn

from domain.due import Due, localize, zone
from domain.errors import ValidationFailed, echo

_RULE_FIX = "write it as an RRULE such as FREQ=WEEKLY;BYDAY=MO"

_WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
_WEEKDAY_NAMES = (
    ("monday", "mon"),
    ("tuesday", "tue", "tues"),
    ("wednesday", "wed", "weds"),
    ("thursday", "thu", "thur", "thurs"),
    ("friday", "fri"),
    ("saturday", "sat"),
    ("sunday", "sun"),
)
# Weekday name -> Monday-based index; plurals ("mondays") only make sense in a recurrence.
_WEEKDAY = {name: index for index, names in enumerate(_WEEKDAY_NAMES) for name in names}
_WEEKDAYS = _WEEKDAY | {names[0] + "s": index for index, names in enumerate(_WEEKDAY_NAMES)}

_MONTH = {name.lower(): n for n, name in enumerate(calendar.month_name) if name} | {
    name.lower(): n for n, name in enumerate(calendar.month_abbr) if name
}
_MONTH["sept"] = 9

_COUNT_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
}  # fmt: skip
# "every other / second / 3rd week": how many periods apart, never an ordinal within a month.
_INTERVAL_WORDS = {"other": 2, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6}
# "the first / last monday of the month": RFC 5545 BYDAY ordinals.
_ORDINAL = {
    "first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4,
    "fifth": 5, "5th": 5, "last": -1, "second last": -2, "second to last": -2,
}  # fmt: skip

_FREQ = {"hour": "HOURLY", "day": "DAILY", "week": "WEEKLY", "month": "MONTHLY", "year": "YEARLY"}
_ADVERBS = {
    "hourly": "every hour",
    "daily": "every day",
    "weekly": "every week",
    "fortnightly": "every 2 weeks",
    "monthly": "every month",
    "yearly": "every year",
    "annually": "every year",
}


def _alternation(words: Iterable[str]) -> str:
    return "|".join(sorted(map(re.escape, words), key=len, reverse=True))


_DAY_RX = rf"(?:{_alternation(_WEEKDAYS)})"
_ORD_RX = rf"(?:{_alternation(_ORDINAL)})"
_COUNT_RX = rf"(?:\d{{1,4}}|{_alternation(_COUNT_WORDS)})"
_NUM_RX = rf"(?:{_COUNT_RX}|\d{{1,4}}(?:st|nd|rd|th)|{_alternation(_INTERVAL_WORDS)})"
_MONTH_RX = rf"(?:{_alternation(_MONTH)})"
_TIME_RX = r"(?:\d{1,2}(?::\d{2})?(?: ?[ap]m)?|noon|midday|midnight)"
# A clock time that cannot be a count: what a recurrence phrase must not carry.
_CLOCK_RX = r"(?:\d{1,2}(?::\d{2})? ?[ap]m|\d{1,2}:\d{2}|noon|midday|midnight)"
_LIST_SPLIT = re.compile(r", and |, | and ")


def looks_like_rrule(text: str) -> bool:
    """Whether `text` is written as RFC 5545 (an RRULE/EXDATE line or KEY=VALUE parts)."""
    for line in text.strip().upper().splitlines():
        head = line.strip()
        if head.startswith(("RRULE:", "EXDATE", "DTSTART", "RDATE", "EXRULE")):
            return True
        if re.match(r"[A-Z]+\s*=", head):
            return True
    return False


def _normalize(text: str) -> str:
    s = text.lower().strip()
    s = re.sub(r"\b([ap])\.m\.?", r"\1m", s)
    s = s.rstrip(".!").replace("&", " and ")
    s = re.sub(r"\s*,\s*", ", ", s)
    s = re.sub(r"\s+", " ", s).strip(" ,")
    return re.sub(r"\beach\b", "every", s)


def _number(word: str) -> int:
    if word in _COUNT_WORDS:
        return _COUNT_WORDS[word]
    if word in _INTERVAL_WORDS:
        return _INTERVAL_WORDS[word]
    return int(re.sub(r"(st|nd|rd|th)$", "", word))


# --- recurrence -------------------------------------------------------------------------------


def rrule_from_phrase(text: str) -> str:
    """An English recurrence phrase as an RRULE (no 'RRULE:' prefix), or a ValidationFailed."""
    s = _normalize(text)
    if not s:
        raise ValidationFailed("recurrence", "is empty", f"{_RULE_FIX}, or null for no recurrence")
    _refuse_recurrence_traps(s)
    parts = _recurrence(s)
    if parts is None:
        raise ValidationFailed(
            "recurrence",
            f"{echo(text.strip())} is not an RRULE or a phrase Dueflow reads",
            _RULE_FIX,
        )
    return _rule_text(parts)


def _rule_text(parts: dict[str, str]) -> str:
    # The order domain.recurrence normalises to, so the echoed rule is the stored one.
    order = ("FREQ", "INTERVAL", "BYMONTH", "BYMONTHDAY", "BYDAY")
    return ";".join(f"{key}={parts[key]}" for key in order if key in parts)


def _refuse_recurrence_traps(s: str) -> None:
    """Phrases that look readable but would need a guess get their own, precise refusal."""
    refuse = _recurrence_refusal
    if re.search(r"\b(twice|thrice|\w+ times) (a|an|per|every)\b", s):
        refuse("says how often but not on which days", "FREQ=WEEKLY;BYDAY=MO,TH for twice a week")
    if m := re.search(r"\b(bi-?weekly|bi-?monthly|semi-?\w+)\b", s):
        refuse(
            f"{echo(m[1])} can mean twice per period or every second period",
            "FREQ=WEEKLY;INTERVAL=2 for every two weeks, FREQ=WEEKLY;BYDAY=MO,TH for twice a week",
        )
    if re.search(r"\b(until|till|through|ending|ends|for|times)\b", s):
        refuse(
            "an end ('until', 'for', 'times') is not read from phrases",
            "FREQ=WEEKLY;BYDAY=MO;COUNT=10 or FREQ=DAILY;UNTIL=20261231",
        )
    if m := re.fullmatch(rf"every ({_ORD_RX}) ({_DAY_RX})", s):
        n, code = _ORDINAL[m[1]], _WEEKDAY_CODES[_WEEKDAYS[m[2]]]
        weekly = f", FREQ=WEEKLY;INTERVAL={n};BYDAY={code} for every {n} weeks" if n > 1 else ""
        refuse(
            f"'every {m[1]} {m[2]}' does not say whether it counts within the month",
            f"FREQ=MONTHLY;BYDAY={n}{code} for the {m[1]} {m[2]} of each month{weekly}",
        )
    # "second" alone is an ordinal ("every second week"), so only the plural names a unit here.
    if re.search(r"\b(minutes?|mins?|seconds|secs?)\b", s):
        refuse("repeats more often than hourly", "FREQ=HOURLY, with INTERVAL=2 for every 2 hours")
    clock = rf"(?:,? (?:at )?{_CLOCK_RX}(?= |$)|\b(?:morning|afternoon|evening|night)\b)"
    if re.search(r"\d ?[ap]m\b|\d:\d\d|\b(noon|midday|midnight|morning|evening|night)\b", s):
        without = re.sub(clock, "", s).strip()
        rule = _recurrence(without) if without else None
        refuse(
            "a time of day is not part of the recurrence; the series keeps the time of its due",
            f"{_rule_text(rule) if rule else 'FREQ=DAILY'} and put the time in due",
        )


def _recurrence_refusal(problem: str, rule: str) -> NoReturn:
    raise ValidationFailed("recurrence", problem, f"write it as an RRULE: {rule}")


def _recurrence(s: str) -> dict[str, str] | None:
    for adverb, every in _ADVERBS.items():
        s = re.sub(rf"^{adverb}\b", every, s)
    if m := re.fullmatch(rf"every (?:({_NUM_RX}) )?(hour|day|week|month|year)s?(?: on (.+))?", s):
        parts = {"FREQ": _FREQ[m[2]]}
        interval = _number(m[1]) if m[1] else 1
        if interval < 1:
            return None
        if interval > 1:
            parts["INTERVAL"] = str(interval)
        if m[3] is None:
            return parts
        on = {"week": _weekly_on, "month": _monthly_on, "year": _yearly_on}.get(m[2])
        extra = on(m[3]) if on else None
        return parts | extra if extra else None
    if m := re.fullmatch(r"every (weekday|weekend|weekend day)s?", s):
        days = "MO,TU,WE,TH,FR" if m[1] == "weekday" else "SA,SU"
        return {"FREQ": "WEEKLY", "BYDAY": days}
    if m := re.fullmatch(rf"every (?:({_NUM_RX}) )?(.+)", s):
        byday = _weekly_on(m[2])
        if byday and not (m[1] and m[1] in _ORDINAL):
            interval = _number(m[1]) if m[1] else 1
            spacing = {"INTERVAL": str(interval)} if interval > 1 else {}
            return {"FREQ": "WEEKLY"} | spacing | byday
    if "every" in s and (m := re.fullmatch(r"(?:on )?(?:every )?(.+) of (?:the |every )?month", s)):
        return {"FREQ": "MONTHLY"} | extra if (extra := _monthly_on(m[1])) else None
    if m := re.fullmatch(r"every (.+)|(?:on )?(.+) every year", s):
        return {"FREQ": "YEARLY"} | extra if (extra := _yearly_on(m[1] or m[2])) else None
    return None


def _weekly_on(slot: str) -> dict[str, str] | None:
    names = _LIST_SPLIT.split(slot)
    if not all(name in _WEEKDAYS for name in names):
        return None
    indexes = sorted({_WEEKDAYS[name] for name in names})
    return {"BYDAY": ",".join(_WEEKDAY_CODES[i] for i in indexes)}


def _monthly_on(slot: str) -> dict[str, str] | None:
    slot = re.sub(r"^the ", "", slot)
    if m := re.fullmatch(rf"({_ORD_RX}) day", slot):
        return {"BYMONTHDAY": str(_ORDINAL[m[1]])}
    if m := re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", slot):
        day = int(m[1])
        if not 1 <= day <= 31:
            return None
        if day > 28:
            _recurrence_refusal(
                f"not every month has a day {day}",
                f"FREQ=MONTHLY;BYMONTHDAY={day} skips shorter months, "
                "FREQ=MONTHLY;BYMONTHDAY=-1 is each month's last day",
            )
        return {"BYMONTHDAY": str(day)}
    if m := re.fullmatch(rf"({_ORD_RX}) ({_DAY_RX})", slot):
        n, code = _ORDINAL[m[1]], _WEEKDAY_CODES[_WEEKDAYS[m[2]]]
        if n == 5:
            _recurrence_refusal(
                f"not every month has a fifth {m[2]}",
                f"FREQ=MONTHLY;BYDAY=5{code} skips months without one, "
                f"FREQ=MONTHLY;BYDAY=-1{code} is each month's last one",
            )
        return {"BYDAY": f"{n}{code}"}
    return None


def _yearly_on(slot: str) -> dict[str, str] | None:
    day_rx = r"(?:the )?(\d{1,2})(?:st|nd|rd|th)?"
    if m := re.fullmatch(rf"({_MONTH_RX}) {day_rx}", slot):
        month, day = _MONTH[m[1]], int(m[2])
    elif m := re.fullmatch(rf"{day_rx} (?:of )?({_MONTH_RX})", slot):
        month, day = _MONTH[m[2]], int(m[1])
    else:
        return None
    if (month, day) == (2, 29):
        _recurrence_refusal(
            "February 29 exists only in leap years",
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29 for leap years only, "
            "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1 for February's last day",
        )
    if not 1 <= day <= calendar.monthrange(2025, month)[1]:
        _recurrence_refusal(
            f"{calendar.month_name[month]} has no day {day}",
            f"FREQ=YEARLY;BYMONTH={month};BYMONTHDAY=-1 for the month's last day",
        )
    return {"BYMONTH": str(month), "BYMONTHDAY": str(day)}


# --- due --------------------------------------------------------------------------------------


def due_from_phrase(text: str, now: dt.datetime, timezone: str) -> Due:
    """An English due phrase resolved in `timezone` relative to `now`, or a ValidationFailed."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    tz = zone(timezone)
    local_now = now.astimezone(tz)
    phrase = _DuePhrase(local_now)
    s = _normalize(text)
    if not s:
        raise phrase.refusal("is empty")
    phrase.refuse_traps(s)
    if m := re.fullmatch(rf"in ({_COUNT_RX}) (hour|hr|minute|min)s?", s):
        unit = "hours" if m[2] in ("hour", "hr") else "minutes"
        delta = dt.timedelta(**{unit: _number(m[1])})
        return Due(timezone=timezone, at=now.astimezone(dt.UTC) + delta)
    splits = (
        rf"(?P<date>.+?),? (?:at )?(?P<time>{_TIME_RX})",
        rf"(?:at )?(?P<time>{_TIME_RX}),? (?:on )?(?P<date>.+)",
        rf"(?:at )?(?P<time>{_TIME_RX})",
        r"(?P<date>.+)",
    )
    for pattern in splits:
        m = re.fullmatch(pattern, s)
        if not m:
            continue
        groups = m.groupdict()
        day = phrase.date(groups["date"]) if groups.get("date") else phrase.today
        if day is None:
            continue
        if groups.get("time") is None:
            return Due(timezone=timezone, date=day)
        at = localize(dt.datetime.combine(day, phrase.time(groups["time"])), tz)
        if not groups.get("date") and at <= now:
            raise phrase.refusal(
                f"{echo(groups['time'])} has already passed today",
                f"say today or tomorrow with the time, or write {phrase.tomorrow}T"
                f"{phrase.time(groups['time']):%H:%M}",
            )
        return Due(timezone=timezone, at=at)
    if re.search(r"\b\d{1,2}\b", s):
        raise phrase.refusal(
            f"{echo(text.strip())} is not a date or a phrase Dueflow reads "
            "(a bare number could be a time or a day)"
        )
    raise phrase.refusal(f"{echo(text.strip())} is not a date or a phrase Dueflow reads")


class _DuePhrase:
    """The pieces of one due phrase, read against the local `now` it is resolved from."""

    def __init__(self, local_now: dt.datetime) -> None:
        self.today = local_now.date()
        self.tomorrow = self.today + dt.timedelta(days=1)

    def refusal(self, problem: str, fix: str | None = None) -> ValidationFailed:
        return ValidationFailed(
            "due", problem, fix or f"write it as {self.tomorrow} or {self.tomorrow}T17:00"
        )

    def refuse_traps(self, s: str) -> None:
        no_time = r"tonight|this (?:morning|afternoon|evening)|end of (?:the )?day|eod"
        if m := re.search(rf"\b({no_time})\b", s):
            raise self.refusal(
                f"{echo(m[1])} does not say what time",
                f"write it as today 20:00 or {self.today}T20:00",
            )
        if re.search(r"\b(end of (?:the )?month|eom)\b", s):
            last = self.today.replace(day=calendar.monthrange(self.today.year, self.today.month)[1])
            raise self.refusal(
                "'end of month' could mean the last day or the last working day",
                f"write the day, such as {last} for the last day of this month",
            )
        spans = r"(?:next|this) (?:week|weekend|month|year)|weekend|end of (?:the )?(?:week|year)"
        if m := re.search(rf"\b({spans}|eow|eoy|later|soon|asap|someday)\b", s):
            raise self.refusal(
                f"{echo(m[1])} names a span, not a day", f"write the day, such as {self.tomorrow}"
            )
        if m := re.search(r"\b(\d{1,2}[/.]\d{1,2}(?:[/.]\d{2,4})?)\b(?! ?[ap]m)", s):
            raise self.refusal(f"{echo(m[1])} could be day/month or month/day")

    def date(self, slot: str) -> dt.date | None:
        """The day a date phrase names, None when the slot is not a date phrase."""
        if slot in ("today", "tomorrow", "day after tomorrow", "the day after tomorrow"):
            offset = {"today": 0, "tomorrow": 1}.get(slot, 2)
            return self.today + dt.timedelta(days=offset)
        if m := re.fullmatch(rf"(?:on )?(?:(this|next) )?({_alternation(_WEEKDAY)})", slot):
            return self._weekday(m[1], m[2])
        if m := re.fullmatch(rf"in ({_COUNT_RX}) (day|week|month|year)s?", slot):
            return self._later(_number(m[1]), m[2])
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", slot):
            try:
                return dt.date.fromisoformat(slot)
            except ValueError:
                raise self.refusal(f"{echo(slot)} is not a calendar date") from None
        return None

    def _weekday(self, which: str | None, name: str) -> dt.date:
        ahead = (_WEEKDAY[name] - self.today.weekday()) % 7
        if which is None and ahead == 0:
            day = calendar.day_name[self.today.weekday()]
            raise self.refusal(
                f"today is a {day}, so {echo(name)} could mean today or in a week",
                f"say 'this {name}' for today or 'next {name}' for a week from today, "
                f"or write {self.today + dt.timedelta(days=7)}",
            )
        if which == "next" and ahead == 0:
            ahead = 7
        return self.today + dt.timedelta(days=ahead)

    def _later(self, count: int, unit: str) -> dt.date:
        if count < 1:
            raise self.refusal(f"'in {count} {unit}s' is not later than now")
        if unit in ("day", "week"):
            return self.today + dt.timedelta(days=count * (7 if unit == "week" else 1))
        months = count * (12 if unit == "year" else 1)
        year, month = divmod(self.today.month - 1 + months, 12)
        year += self.today.year
        if year > dt.MAXYEAR:
            raise self.refusal(f"'in {count} {unit}s' is too far ahead")
        if self.today.day > calendar.monthrange(year, month + 1)[1]:
            raise self.refusal(
                f"{self.today} plus {count} {unit}s lands on a day "
                f"{calendar.month_name[month + 1]} {year} does not have",
                "write the day you mean as an ISO date",
            )
        return self.today.replace(year=year, month=month + 1)

    def time(self, slot: str) -> dt.time:
        """The wall time a clock phrase names; bare hours and midnight are refused as guesses."""
        if slot in ("noon", "midday"):
            return dt.time(12)
        if slot == "midnight":
            raise self.refusal(
                "'midnight' could start or end the day",
                f"write {self.tomorrow}T00:00 for the start of {self.tomorrow}",
            )
        m = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?(?: ?([ap]m))?", slot)
        assert m is not None, slot  # only called with text that matched _TIME_RX
        hour, minute, half = int(m[1]), int(m[2] or 0), m[3]
        if minute > 59:
            raise self.refusal(f"{echo(slot)} is not a time of day")
        if half is not None:
            if not 1 <= hour <= 12:
                raise self.refusal(f"{echo(slot)} is not a time of day")
            if (hour, half) == (12, "am"):
                raise self.refusal(
                    f"{echo(slot)} is midnight, which could start or end the day",
                    f"write {self.tomorrow}T00:00 for the start of {self.tomorrow}",
                )
            return dt.time(hour % 12 + (12 if half == "pm" else 0), minute)
        if m[2] is None:
            raise self.refusal(
                f"the bare number {echo(slot)} could be {hour}am, {hour}pm or a day",
                f"write {hour}am or {hour}pm" if 1 <= hour <= 12 else f"write {hour}:00",
            )
        if hour > 23:
            raise self.refusal(f"{echo(slot)} is not a time of day")
        # 24-hour clock: only unambiguous when it cannot be read on a 12-hour clock as well.
        if 1 <= hour <= 11 and not m[1].startswith("0"):
            raise self.refusal(
                f"{echo(slot)} could be {hour}:{minute:02d} in the morning or the evening",
                f"write {slot}am or {slot}pm, or on the 24-hour clock "
                f"{hour:02d}:{minute:02d} or {hour + 12}:{minute:02d}",
            )
        return dt.time(hour, minute)
