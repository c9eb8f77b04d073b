"""Tasks to and from iCalendar text (RFC 5545), with the `icalendar` library.

Writing: a VTODO per task (or, for feeds that ask for them, a VEVENT per open task with a due)
with the VTIMEZONEs its times need. Reading: each VTODO (and VEVENT, when asked) as a
domain.calendar.CalendarItem of raw fields the domain checks as add_task's; every property,
parameter and component that is not imported is named in the item's notes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
from icalendar.timezone.tzid import tzid_from_dt
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from domain.adapters.calendar_renders import RenderedItem
from domain.arguments import NewTask
from domain.calendar import MAX_ICS_CHARS, MAX_UID, CalendarItem, ItemReport, Stamp
from domain.due import EARLIEST_YEAR, LATEST_YEAR, Due, iso_utc, localize, zone
from domain.errors import DueflowError, ValidationFailed, echo
from domain.model import Priority, Status, Task
from domain.reminder_specs import ALL_DAY_REFERENCE, MAX_LEAD, Reminder, format_duration
from domain.text import check_text

PRODID = "-//Dueflow//Dueflow tasks//EN"
MAX_COMPONENTS = 20_000
MAX_DEPTH = 4  # VCALENDAR > VTODO > VALARM, VCALENDAR > VTIMEZONE > STANDARD
MAX_SEQUENCE = 2_000_000_000
SERIES_YEARS = 5  # how far past its due a series' VTIMEZONE reaches
EVENT_MINUTES = 15  # how long a timed task lasts as a VEVENT in a feed
X_ANCHOR = "X-DUEFLOW-ANCHOR"
X_SERIES = "X-DUEFLOW-SERIES"
X_OCCURRENCE = "X-DUEFLOW-OCCURRENCE"
X_ENDED = "X-DUEFLOW-SERIES-ENDED"
X_TIMEZONE = "X-DUEFLOW-TIMEZONE"
_FIX = "send the text of an .ics file (BEGIN:VCALENDAR … END:VCALENDAR) holding VTODOs"
_CALENDAR_KNOWN = {"PRODID", "VERSION", "CALSCALE", "METHOD", "X-WR-TIMEZONE"}
_TODO_KNOWN = {
    "UID",
    "SUMMARY",
    "DESCRIPTION",
    "DUE",
    "PRIORITY",
    "CATEGORIES",
    "STATUS",
    "COMPLETED",
    "CREATED",
    "LAST-MODIFIED",
    "DTSTAMP",
    "SEQUENCE",
    "RRULE",
    "EXDATE",
    "RELATED-TO",
    X_ANCHOR,
    X_SERIES,
    X_OCCURRENCE,
    X_ENDED,
    X_TIMEZONE,
}
_ALARM_KNOWN = {"ACTION", "TRIGGER", "DESCRIPTION", "SUMMARY", "UID", "X-WR-ALARMUID"}
_ICAL_PRIORITY = {0: Priority.NONE, 1: Priority.URGENT, 5: Priority.MEDIUM}


# --- writing ---------------------------------------------------------------------------------


def render_item(
    task: Task, stamp: Stamp, stamped_at: dt.datetime | None, events: bool
) -> RenderedItem:
    """The VTODO (or, with `events`, VEVENT) of `task`, written by the library."""
    item = _event(task, stamp, stamped_at) if events else _todo(task, stamp, stamped_at)
    text = item.to_ical()
    moments = list(_moments(task))
    return RenderedItem(
        text,
        frozenset(m.decode() for m in _TZID.findall(text)),
        min(moments) if moments else None,
        max(moments) if moments else None,
    )


class Rendered:
    """Components and VTIMEZONEs already written, by what they depend on (a task's version and
    stamp; a zone and its years): a feed re-renders only what changed. Bounded, oldest out."""

    def __init__(self, components: int = 20_000, zones: int = 256) -> None:
        self._components: OrderedDict[tuple[Any, ...], RenderedItem] = OrderedDict()
        self._zones: OrderedDict[tuple[str, dt.date, dt.date], bytes] = OrderedDict()
        self._sizes = (components, zones)

    def component(
        self, task: Task, stamp: Stamp, stamped_at: dt.datetime | None, events: bool
    ) -> RenderedItem:
        key = (task.id, task.version, stamp, stamped_at, events)
        found = self._components.get(key)
        if found is None:
            found = render_item(task, stamp, stamped_at, events)
            _remember(self._components, key, found, self._sizes[0])
        return found

    def zone(self, tzid: str, first: dt.date, last: dt.date) -> bytes:
        key = (tzid, first, last)
        found = self._zones.get(key)
        if found is None:
            found = _timezone(tzid, first, last).to_ical()
            _remember(self._zones, key, found, self._sizes[1])
        return found


def _timezone(tzid: str, first: dt.date, last: dt.date) -> icalendar.Timezone:
    """The VTIMEZONE of `tzid` from `first` to `last`, as the library writes it, with each
    sub-component's DTSTART repeated among its RDATEs: ical.js (Thunderbird's parser) takes the
    onsets of a sub-component with RDATE from its RDATEs alone, and so read a time in the first
    summer of the span an hour off. RFC 5545 ignores the duplicate onset."""
    timezone = icalendar.Timezone.from_tzid(tzid, first_date=first, last_date=last)
    for onset in timezone.subcomponents:
        start: Any = onset.get("DTSTART")
        if "RDATE" in onset and start is not None:
            onset.add("rdate", start.dt)
    return timezone


def _remember(cache: OrderedDict[Any, Any], key: Any, value: Any, size: int) -> None:
    cache[key] = value
    if len(cache) > size:
        cache.popitem(last=False)


_TZID = re.compile(rb";TZID=([^:;\r\n]+)")


def render(
    tasks: Sequence[tuple[Task, Stamp]],
    stamped_at: dt.datetime | None,
    *,
    events: bool = False,
    name: str | None = None,
    rendered: Rendered | None = None,
) -> str:
    """A VCALENDAR of `tasks`; DTSTAMP is `stamped_at`, or each item's LAST-MODIFIED (a feed,
    whose text then depends on the tasks alone). `events`: open tasks with a due as VEVENTs.
    Each component and VTIMEZONE is written by the library; `rendered` keeps them for the next
    call."""
    rendered = rendered or Rendered()
    items = [
        rendered.component(task, stamp, stamped_at, events)
        for task, stamp in tasks
        if not (events and (task.due is None or task.status is not Status.OPEN))
    ]
    return assemble(items, name=name, rendered=rendered)


def assemble(
    items: Sequence[RenderedItem], *, name: str | None = None, rendered: Rendered | None = None
) -> str:
    """A VCALENDAR around components already written, with the VTIMEZONEs they need."""
    rendered = rendered or Rendered()
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if name:
        calendar.add("x-wr-calname", name)
    zones: set[str] = set()
    firsts = [item.first for item in items if item.first is not None]
    lasts = [item.last for item in items if item.last is not None]
    for item in items:
        zones |= item.tzids
    # the VTIMEZONEs every TZID needs, first (as RFC 5545 readers expect), covering the times
    # written and the years a series runs on after them
    timezones = [rendered.zone(tzid, min(firsts), max(lasts)) for tzid in sorted(zones) if firsts]
    head = calendar.to_ical()
    end = b"END:VCALENDAR\r\n"
    assert head.endswith(end)
    body = b"".join(item.text for item in items)
    return str((head[: -len(end)] + b"".join(timezones) + body + end).decode())


def _moments(task: Task) -> Iterable[dt.date]:
    """The days the VTIMEZONE of a task's zone must cover."""
    if task.due is None or task.due.at is None:
        return
    day = task.due.at.date()
    yield day - dt.timedelta(days=1)
    yield day + dt.timedelta(days=1)
    rec = task.recurrence
    if rec is not None:
        yield min(day + dt.timedelta(days=366 * SERIES_YEARS), dt.date(LATEST_YEAR, 12, 31))
        for wall in (rec.start, *rec.exdates):
            if isinstance(wall, dt.datetime):
                yield wall.date() - dt.timedelta(days=1)


def _todo(task: Task, stamp: Stamp, stamped_at: dt.datetime | None) -> icalendar.Todo:
    todo = icalendar.Todo()
    _common(todo, task, stamp, stamped_at)
    if task.due is not None:
        todo.add("due", _when(task.due))
    todo.add("status", "COMPLETED" if task.status is Status.COMPLETED else "NEEDS-ACTION")
    if task.completed_at is not None:
        todo.add("completed", _utc(task.completed_at))
    rec = task.recurrence
    if rec is not None and task.due is not None:
        tz = task.due.tz
        start = rec.start if rec.start is not None else _wall(task.due)
        todo.add("dtstart", _local(start, tz))
        todo.add("rrule", icalendar.vRecur.from_ical(rec.rule))
        if rec.exdates:
            todo.add("exdate", [_local(day, tz) for day in rec.exdates])
        todo.add(X_ANCHOR, rec.anchor.value)
        todo.add(X_SERIES, rec.series_id)
        todo.add(X_OCCURRENCE, str(task.occurrence))
        if task.series_ended:
            todo.add(X_ENDED, "TRUE")
    if stamp.next_uid is not None:
        todo.add("related-to", stamp.next_uid, parameters={"RELTYPE": "NEXT"})
    for reminder in task.reminders:
        todo.add_component(_alarm(task, reminder, related_end=True))
    return todo


def _event(task: Task, stamp: Stamp, stamped_at: dt.datetime | None) -> icalendar.Event:
    assert task.due is not None
    event = icalendar.Event()
    _common(event, task, stamp, stamped_at)
    start = _when(task.due)
    event.add("dtstart", start)
    if isinstance(start, dt.datetime):
        event.add("dtend", start + dt.timedelta(minutes=EVENT_MINUTES))
    else:
        event.add("dtend", start + dt.timedelta(days=1))
    event.add("transp", "TRANSPARENT")  # a task does not make its user busy
    for reminder in task.reminders:
        event.add_component(_alarm(task, reminder, related_end=False))
    return event


def _common(
    item: icalendar.Component, task: Task, stamp: Stamp, stamped_at: dt.datetime | None
) -> None:
    item.add("uid", stamp.uid)
    item.add("dtstamp", _utc(stamped_at or stamp.last_modified or task.updated_at))
    item.add("created", _utc(task.created_at))
    if stamp.last_modified is not None:
        item.add("last-modified", _utc(stamp.last_modified))
    item.add("sequence", stamp.sequence)
    item.add("summary", task.title)
    if task.description:
        item.add("description", task.description)
    if task.priority is not Priority.NONE:
        item.add("priority", task.priority.ical)
    if task.tags:
        item.add("categories", list(task.tags))
    if task.due is not None and (
        task.due.all_day or _ambiguous(task.due) or task.due.timezone == "UTC"
    ):
        item.add(X_TIMEZONE, task.due.timezone)


def _alarm(task: Task, reminder: Reminder, related_end: bool) -> icalendar.Alarm:
    alarm = icalendar.Alarm()
    alarm.add("action", "DISPLAY")
    alarm.add("description", task.title)
    if reminder.at is not None:
        alarm.add("trigger", _utc(reminder.at), parameters={"VALUE": "DATE-TIME"})
        return alarm
    assert reminder.before is not None and task.due is not None
    offset = -reminder.before
    if task.due.all_day:  # Dueflow counts back from 09:00 local; a calendar from the date's start
        offset += _since_midnight(ALL_DAY_REFERENCE)
    alarm.add("trigger", offset, parameters={"RELATED": "END"} if related_end else {})
    return alarm


def _when(due: Due) -> dt.date | dt.datetime:
    """A due as DUE writes it: a date, a local time with its TZID, or (for a wall time the
    zone shows twice or never, which a TZID cannot tell apart) UTC beside X-DUEFLOW-TIMEZONE."""
    if due.date is not None:
        return due.date
    if _ambiguous(due) or not isinstance(due.local, dt.datetime):
        return _utc(due.instant)
    return due.local


def _ambiguous(due: Due) -> bool:
    local = due.local
    if due.at is None or not isinstance(local, dt.datetime):
        return False
    return localize(local.replace(tzinfo=None), due.tz) != due.at


def _wall(due: Due) -> dt.datetime | dt.date:
    local = due.local
    return local.replace(tzinfo=None) if isinstance(local, dt.datetime) else local


def _local(value: dt.datetime | dt.date, tz: ZoneInfo) -> dt.datetime | dt.date:
    """A series' wall time (or date) as an aware time in the task's zone."""
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=tz)
    return value


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _since_midnight(time: dt.time) -> dt.timedelta:
    return dt.timedelta(hours=time.hour, minutes=time.minute)


# --- reading ---------------------------------------------------------------------------------


@dataclass
class ParsedCalendar:
    """What a text holds: items to import, items refused as they were read, and what of the
    calendar itself was not imported."""

    items: list[CalendarItem] = field(default_factory=list)
    refused: list[ItemReport] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse(text: str, default_timezone: str, events_as_tasks: bool = False) -> ParsedCalendar:
    """Read every VTODO of `text` (and VEVENT, as a task due at its start, if asked)."""
    _check_shape(text)
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except Exception as exc:  # the library raises ValueError, KeyError, IndexError … on bad text
        raise ValidationFailed(
            "ics", f"is not iCalendar text the parser reads ({echo(str(exc))})", _FIX
        ) from None
    parsed = ParsedCalendar()
    if not calendars:
        raise ValidationFailed("ics", "holds no VCALENDAR", _FIX)
    for calendar in calendars:
        if calendar.name != "VCALENDAR":
            parsed.notes.append(f"{_name(calendar)} outside a VCALENDAR: not imported")
            continue
        default = _calendar_zone(calendar, default_timezone, parsed.notes)
        for name, _value in _properties(calendar):
            if name not in _CALENDAR_KNOWN:
                parsed.notes.append(f"calendar property {name}: not imported")
        for component in calendar.subcomponents:
            _read_component(component, default, events_as_tasks, parsed)
    return parsed


def _check_shape(text: str) -> None:
    check_text(text, "ics")
    if len(text) > MAX_ICS_CHARS:
        raise ValidationFailed(
            "ics", f"has {len(text)} characters", f"send at most {MAX_ICS_CHARS} per import"
        )
    depth = components = 0
    for line in text.splitlines():
        head = line[:6].upper()
        if head == "BEGIN:":
            depth += 1
            components += 1
            if depth > MAX_DEPTH or components > MAX_COMPONENTS:
                raise ValidationFailed(
                    "ics",
                    "nests components deeper than a calendar does"
                    if depth > MAX_DEPTH
                    else f"has more than {MAX_COMPONENTS} components",
                    "send a calendar of VTODOs, at most 1,000 per import",
                )
        elif line[:4].upper() == "END:":
            depth -= 1
    if "BEGIN:VCALENDAR" not in text.upper():
        raise ValidationFailed("ics", "holds no BEGIN:VCALENDAR", _FIX)


def _read_component(
    component: icalendar.Component, default: str, events_as_tasks: bool, parsed: ParsedCalendar
) -> None:
    name = _name(component)
    if name == "VTIMEZONE":
        return
    if name not in ("VTODO", "VEVENT"):
        parsed.notes.append(f"{name}: not imported (Dueflow imports VTODOs)")
        return
    uid = _text(component, "UID")
    title = _text(component, "SUMMARY")[:100]
    if name == "VEVENT" and not events_as_tasks:
        parsed.refused.append(
            ItemReport(
                uid,
                title,
                "skipped",
                notes=(
                    "VEVENT: an event, not a task; not imported. Fix: import it again with"
                    " events_as_tasks (CLI: --events-as-tasks) to make it a task due at its start",
                ),
            )
        )
        return
    if "RECURRENCE-ID" in component:
        parsed.refused.append(
            ItemReport(
                uid,
                title,
                "skipped",
                notes=("RECURRENCE-ID: a change to one occurrence of a series; not imported",),
            )
        )
        return
    try:
        parsed.items.append(_item(component, default))
    except DueflowError as exc:
        parsed.refused.append(ItemReport(uid, title, "skipped", notes=(exc.message,)))


def _item(component: icalendar.Component, default: str) -> CalendarItem:
    notes: list[str] = []
    is_event = _name(component) == "VEVENT"
    known = set(_TODO_KNOWN)
    uid = _uid(component, notes)
    title = _text(component, "SUMMARY").strip()
    if not title:
        title = "Untitled"
        notes.append("no SUMMARY: titled 'Untitled'")
    due_value = component.get("DTSTART" if is_event else "DUE")
    rrule = component.get("RRULE")
    start_value = component.get("DTSTART")
    if is_event:
        known |= {"DTSTART"}
    elif rrule is not None and start_value is not None:
        known.add("DTSTART")
    if due_value is None and rrule is not None and start_value is not None:
        due_value = start_value  # a series without DUE is due at its start
        notes.append("no DUE: due at DTSTART")
    due_zone = _zone_of(component, due_value, default, notes)
    due_text = _moment_text(due_value, due_zone, "DUE", notes) if due_value is not None else None
    recurrence, series_start = None, None
    if rrule is not None:
        recurrence = _recurrence(component, rrule, due_zone, notes)
        if start_value is not None and not is_event:
            series_start = _moment_text(start_value, due_zone, "DTSTART", notes)
    reminders = _reminders(component, due_value, start_value, due_zone, notes)
    status, completed = _status(component, notes)
    fields = NewTask(
        title=title,
        description=_text(component, "DESCRIPTION") or None,
        due=due_text,
        timezone=due_zone,
        priority=_priority(component, notes).value,
        tags=_categories(component),
        reminders=reminders,
        recurrence=recurrence,
        recurrence_anchor=_text(component, X_ANCHOR) or None if recurrence else None,
    )
    for name, _value in _properties(component):
        if name not in known:
            notes.append(f"{name}: not imported")
    for child in component.subcomponents:
        if _name(child) != "VALARM":
            notes.append(f"{_name(child)} inside the item: not imported")
    return CalendarItem(
        uid=uid,
        fields=fields,
        series_start=series_start,
        series_id=_text(component, X_SERIES) or None,
        occurrence=_occurrence(component, notes),
        series_ended=_text(component, X_ENDED).upper() == "TRUE",
        completed=status is Status.COMPLETED,
        completed_at=completed,
        created_at=_stamp(component, "CREATED", notes),
        sequence=_sequence(component, notes),
        last_modified=_stamp(component, "LAST-MODIFIED", notes),
        next_uid=_next(component, notes),
        notes=tuple(notes),
    )


def _uid(component: icalendar.Component, notes: list[str]) -> str:
    uid = _text(component, "UID").strip()
    if uid and len(uid) <= MAX_UID:
        return uid
    # a stable UID from the item itself, so importing the same file again still finds it
    digest = hashlib.sha256(component.to_ical()).hexdigest()[:32]
    notes.append(
        f"UID longer than {MAX_UID} characters: known here as dueflow-{digest}"
        if uid
        else f"no UID: known here as dueflow-{digest}"
    )
    return f"dueflow-{digest}"


def _calendar_zone(calendar: icalendar.Component, default: str, notes: list[str]) -> str:
    named = _text(calendar, "X-WR-TIMEZONE").strip()
    if not named:
        return default
    try:
        zone(named)
    except ValidationFailed:
        notes.append(
            f"X-WR-TIMEZONE {echo(named)} is not an IANA zone: floating times in {default}"
        )
        return default
    return named


def _zone_of(
    component: icalendar.Component, value: Any, default: str, notes: list[str]
) -> str | None:
    """The IANA zone of the item's due: its TZID (Windows names mapped), else the default."""
    if value is None:
        return None
    moment = value.dt
    if not isinstance(moment, dt.datetime):
        named = _text(component, X_TIMEZONE).strip()
        if named:
            try:
                zone(named)
                return named
            except ValidationFailed:
                notes.append(f"{X_TIMEZONE} {echo(named)} is not an IANA zone: read in {default}")
        return default
    if moment.tzinfo is None:
        tzid = value.params.get("TZID")
        if tzid:
            notes.append(f"TZID {echo(tzid)} has no definition: read as wall time in {default}")
        return default
    if moment.utcoffset() == dt.timedelta(0) and moment.tzinfo in (dt.UTC, ZoneInfo("UTC")):
        # a UTC time is read in the zone Dueflow wrote beside it, else the calendar's zone
        named = _text(component, X_TIMEZONE).strip()
        try:
            return zone(named).key if named else default
        except ValidationFailed:
            notes.append(f"{X_TIMEZONE} {echo(named)} is not an IANA zone: read in {default}")
            return default
    name = tzid_from_dt(moment) or ""
    name = WINDOWS_TO_OLSON.get(name, name)
    try:
        zone(name)
        return name
    except ValidationFailed:
        notes.append(f"TZID {echo(name)} is not an IANA zone: kept the moment, in {default}")
        return default


def _moment_text(value: Any, zone_name: str | None, what: str, notes: list[str]) -> str:
    moment = value.dt
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            return moment.isoformat()
        tz = zone(zone_name or "UTC")
        try:
            return moment.astimezone(tz).isoformat()
        except (OverflowError, ValueError):
            raise ValidationFailed(what, f"{echo(str(moment))} is out of range", "fix it") from None
    if isinstance(moment, dt.date):
        return moment.isoformat()
    raise ValidationFailed(what, "is not a date or date-time", "give DATE or DATE-TIME")


def _recurrence(
    component: icalendar.Component, rrule: Any, zone_name: str | None, notes: list[str]
) -> str:
    rules = rrule if isinstance(rrule, list) else [rrule]
    if len(rules) > 1:
        notes.append(f"{len(rules) - 1} more RRULE: not imported (one rule per series)")
    lines = ["RRULE:" + rules[0].to_ical().decode()]
    exdates = component.get("EXDATE")
    for group in exdates if isinstance(exdates, list) else [exdates] if exdates else []:
        for entry in group.dts:
            lines.append("EXDATE:" + _exdate(entry.dt, zone_name))
    return "\n".join(lines)


def _exdate(value: dt.date | dt.datetime, zone_name: str | None) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.strftime("%Y%m%dT%H%M%S")
        return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def _reminders(
    component: icalendar.Component,
    due_value: Any,
    start_value: Any,
    zone_name: str | None,
    notes: list[str],
) -> list[str]:
    specs: list[str] = []
    due = due_value.dt if due_value is not None else None
    for alarm in component.subcomponents:
        if _name(alarm) != "VALARM":
            continue
        for name, _value in _properties(alarm):
            if name not in _ALARM_KNOWN:
                notes.append(f"VALARM {name}: not imported")
        if _text(alarm, "ACTION").upper() == "NONE":
            notes.append("VALARM with ACTION:NONE: not imported")
            continue
        trigger = alarm.get("TRIGGER")
        if trigger is None:
            notes.append("VALARM without TRIGGER: not imported")
            continue
        spec = _trigger_spec(component, trigger, due, start_value, zone_name, notes)
        if spec is not None:
            specs.append(spec)
    if len(specs) > 20:
        notes.append(f"{len(specs) - 20} VALARM beyond 20: not imported")
    return specs[:20]


def _trigger_spec(
    component: icalendar.Component,
    trigger: Any,
    due: Any,
    start_value: Any,
    zone_name: str | None,
    notes: list[str],
) -> str | None:
    value = trigger.dt
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone(zone_name or "UTC"))
        if not EARLIEST_YEAR < value.year < LATEST_YEAR:
            notes.append("VALARM TRIGGER outside the supported years: not imported")
            return None
        return iso_utc(value.astimezone(dt.UTC))
    if not isinstance(value, dt.timedelta):
        notes.append("VALARM TRIGGER is neither a duration nor a date-time: not imported")
        return None
    if due is None:
        notes.append("VALARM relative to a DUE the item lacks: not imported")
        return None
    related = str(trigger.params.get("RELATED", "START")).upper()
    if related != "END" and _name(component) == "VTODO":
        start = start_value.dt if start_value is not None else None
        if (
            isinstance(start, dt.datetime)
            and isinstance(due, dt.datetime)
            and "RRULE" not in component
        ):
            value = value - (due - start) if due.tzinfo and start.tzinfo else value
        else:
            notes.append("VALARM relative to START: counted from DUE")
    before = -value
    if not isinstance(due, dt.datetime):
        before += _since_midnight(ALL_DAY_REFERENCE)
    if before < dt.timedelta(0):
        notes.append("VALARM after DUE: not imported (reminders fire before due)")
        return None
    if before > MAX_LEAD:
        notes.append("VALARM more than 365 days before DUE: not imported")
        return None
    return format_duration(before)


def _status(component: icalendar.Component, notes: list[str]) -> tuple[Status, dt.datetime | None]:
    status = _text(component, "STATUS").upper() or "NEEDS-ACTION"
    completed = _stamp(component, "COMPLETED", notes)
    if status == "CANCELLED":
        raise DueflowError("STATUS:CANCELLED: a cancelled task; not imported")
    if status == "COMPLETED" or (completed is not None and status == "NEEDS-ACTION"):
        return Status.COMPLETED, completed
    if status not in ("NEEDS-ACTION", "IN-PROCESS", "TENTATIVE", "CONFIRMED"):
        notes.append(f"STATUS {echo(status)}: read as open")
    return Status.OPEN, None


def _priority(component: icalendar.Component, notes: list[str]) -> Priority:
    raw = component.get("PRIORITY")
    if raw is None:
        return Priority.NONE
    try:
        value = int(raw)
    except (TypeError, ValueError):
        notes.append("PRIORITY is not a number: not imported")
        return Priority.NONE
    if not 0 <= value <= 9:
        notes.append(f"PRIORITY {value} is not 0-9: not imported")
        return Priority.NONE
    if value in _ICAL_PRIORITY:
        return _ICAL_PRIORITY[value]
    return Priority.HIGH if value < 5 else Priority.LOW


def _categories(component: icalendar.Component) -> list[str]:
    found = component.get("CATEGORIES")
    tags: list[str] = []
    for group in found if isinstance(found, list) else [found] if found is not None else []:
        tags.extend(str(category) for category in group.cats)
    return tags


def _stamp(component: icalendar.Component, name: str, notes: list[str]) -> dt.datetime | None:
    value = component.get(name)
    if value is None:
        return None
    moment = getattr(value, "dt", None)
    if isinstance(moment, dt.datetime):
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
    elif isinstance(moment, dt.date):
        moment = dt.datetime.combine(moment, dt.time(), dt.UTC)
    else:
        notes.append(f"{name} is not a date-time: not imported")
        return None
    if not EARLIEST_YEAR < moment.year < LATEST_YEAR:
        notes.append(f"{name} outside the supported years: not imported")
        return None
    return moment.astimezone(dt.UTC)


def _sequence(component: icalendar.Component, notes: list[str]) -> int:
    raw = component.get("SEQUENCE")
    if raw is None:
        return 0
    value = int(raw)
    if not 0 <= value <= MAX_SEQUENCE:
        notes.append(f"SEQUENCE {value} is not 0-{MAX_SEQUENCE}: read as 0")
        return 0
    return value


def _occurrence(component: icalendar.Component, notes: list[str]) -> int:
    raw = _text(component, X_OCCURRENCE).strip()
    if not raw:
        return 1
    if not raw.isdigit() or not 1 <= int(raw[:9]) <= 1_000_000:
        notes.append(f"{X_OCCURRENCE} {echo(raw)}: read as 1")
        return 1
    return int(raw)


def _next(component: icalendar.Component, notes: list[str]) -> str | None:
    found = component.get("RELATED-TO")
    following = None
    for related in found if isinstance(found, list) else [found] if found is not None else []:
        kind = str(related.params.get("RELTYPE", "PARENT")).upper()
        if kind == "NEXT" and following is None and 0 < len(str(related)) <= MAX_UID:
            following = str(related)
        else:
            notes.append(f"RELATED-TO;RELTYPE={kind}: not imported")
    return following


def _properties(component: icalendar.Component) -> list[tuple[str, Any]]:
    found = component.property_items(recursive=False, sorted=False)
    return [(str(name).upper(), value) for name, value in found if name not in ("BEGIN", "END")]


def _text(component: icalendar.Component, name: str) -> str:
    value = component.get(name)
    if value is None:
        return ""
    if isinstance(value, list):
        value = value[0]
    return str(value)


def _name(component: icalendar.Component) -> str:
    return str(component.name or "a component").upper()
