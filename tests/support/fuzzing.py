"""The fuzzer: plans tool calls from each tool's published input schema (tests/support/hostile.py),
makes them through real MCP clients of two users, and checks every answer and, afterwards, what
the database holds. The CI sample (tests/fuzz) and the long run (tests/bench/bench_fuzz.py) share
it."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import re
import time
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from fastmcp import Client
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import seed as seeded
from hypothesis import strategies as st

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.database import rows
from tests.support.hostile import CursorOf, Huge, Json, TaskIdOf, arguments_for
from tests.support.refusals import REFUSAL

USERS = ("alice", "bob")
READS = frozenset(
    {"get_task", "list_tasks", "agenda", "list_reminders", "task_history", "preview_recurrence"}
)
LISTINGS = ("list_tasks", "sorted", "task_history")  # list_tasks with sort issues "sorted" cursors
# the tools that read a view the consumers build: each first delivers its caller's own pending
# events (read-your-writes, docs/events.md), whose effects belong to the earlier writes
VIEWS = frozenset({"list_reminders", "task_history", "snooze_reminder", "dismiss_reminder"})
# how often a tool is drawn: writes that create state more often, so later calls find rows
WEIGHTS = {"add_task": 6, "update_task": 3}
BATCH = 100  # calls per hypothesis example
STEP = dt.timedelta(hours=7)  # how far a fixed clock moves on at each settling
SLOW = 1.0  # seconds; a call slower than this is reported (not failed)
# REFUSAL, except that an argument the tool lacks is named as the client sent it ('Title', '')
_UNKNOWN_ARGUMENT = re.compile(
    r"^(?P<field>[^\s:]+|'[^']*'): \S+ has no such argument\. Fix: .+\.$", re.DOTALL
)


@dataclass(frozen=True, slots=True)
class Call:
    """One planned tool call: who makes it, which tool, with which (unresolved) arguments."""

    user: str
    tool: str
    arguments: dict[str, Json]


def plan(schemas: Mapping[str, Mapping[str, Any]], calls: int, seed: int) -> list[Call]:
    """`calls` distinct tool calls drawn by hypothesis from the tools' published input `schemas`,
    the same for the same seed (hypothesis draws simple values often: repeats are dropped)."""
    tools = sorted(name for name in schemas for _ in range(WEIGHTS.get(name, 1)))
    planned: dict[str, Call] = {}

    @settings(
        max_examples=max(1, calls // BATCH),
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(st.data())
    def draw(data: st.DataObject) -> None:
        for _ in range(BATCH):
            user = data.draw(st.sampled_from(["alice", "alice", "alice", "bob"]))
            tool = data.draw(st.sampled_from(tools))
            call = Call(user, tool, data.draw(arguments_for(tool, schemas[tool])))
            planned.setdefault(repr(call), call)

    round_ = 0
    while len(planned) < calls:
        seeded(seed + round_)(draw)()
        round_ += 1
    return list(planned.values())[:calls]


@dataclass
class Tally:
    """What a run did and found."""

    calls: int = 0
    answered: int = 0
    refused: int = 0
    internal_errors: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # "tool.field"
    per_tool: Counter[str] = field(default_factory=Counter)
    answered_per_tool: Counter[str] = field(default_factory=Counter)
    tasks_at_end: int = 0
    occurrences_at_end: int = 0  # tasks the recurrence worker created
    failures: list[str] = field(default_factory=list)
    slow: list[tuple[float, str]] = field(default_factory=list)
    slowest: tuple[float, str] = (0.0, "")
    seconds: float = 0.0

    def fail(self, what: str, call: Call, arguments: Mapping[str, Json], detail: str) -> None:
        self.failures.append(f"{what}: {call.user} {call.tool}({_shown(arguments)}) -> {detail}")


# (user -> count) of tasks, task versions, outbox rows, reminder rows: who owns what was written
Written = tuple[dict[str, int], ...]


class Fuzzer:
    """Makes planned calls as alice and bob through real MCP clients of one runtime, checking
    each answer; `check()` then checks listings and invariants.

    With `width` above 1 the calls go `width` at a time, concurrently, so writers race for the
    same tasks and idempotency keys: each answer is still checked (style, no internal error, no
    other user's task), but what one call wrote can no longer be told from what its neighbours
    wrote, so the per-call write checks are left to `check()`'s invariants."""

    def __init__(
        self,
        runtime: Runtime,
        clients: Mapping[str, Client],
        timeout: float = 10.0,
        settle_every: int = 50,
        clock: FixedClock | None = None,
        width: int = 1,
    ) -> None:
        self.runtime = runtime
        self.width = width
        self.clock = clock
        self.clients = clients
        self.timeout = timeout
        self.settle_every = settle_every
        self.tally = Tally()
        self.tasks: dict[str, list[str]] = {user: [] for user in USERS}
        # the ids of each user's tasks added with a recurrence, or with reminders
        self.kinds: dict[tuple[str, str], list[str]] = {}
        self.acknowledged: dict[str, set[str]] = {user: set() for user in USERS}
        # the last next_cursor each user's listing issued, with the arguments that issued it
        self.cursors: dict[tuple[str, str], tuple[str, dict[str, Json]]] = {}

    async def run(self, calls: list[Call]) -> Tally:
        """Make every call in order, settling (relay drained, listings checked) now and then."""
        started = time.perf_counter()
        for start in range(0, len(calls), self.width):
            await asyncio.gather(*(self.call(call) for call in calls[start : start + self.width]))
            done = start + self.width
            if done // self.settle_every > start // self.settle_every:
                await self.settle()
        await self.settle()
        self.tally.seconds = time.perf_counter() - started
        return self.tally

    async def call(self, call: Call) -> None:
        """Make one call and check its answer and what it wrote."""
        arguments = await self._resolved(call)
        if call.tool in VIEWS and self.width == 1:
            await self.runtime.relay.drain()  # so what is counted is what this call writes
        before = await self.written() if self.width == 1 else None
        started = time.perf_counter()
        self.tally.calls += 1
        self.tally.per_tool[call.tool] += 1
        client = self.clients[call.user]
        try:
            result = await asyncio.wait_for(
                client.call_tool(call.tool, arguments, raise_on_error=False), self.timeout
            )
        except TimeoutError:
            self.tally.fail("no answer", call, arguments, f"none within {self.timeout} s")
            return
        except Exception as exc:
            self.tally.fail("no tool answer", call, arguments, f"{type(exc).__name__}: {exc}")
            return
        elapsed = time.perf_counter() - started
        if elapsed > min(SLOW, self.tally.slowest[0]):
            what = (elapsed, f"{call.user} {call.tool}({_shown(arguments)})")
            self.tally.slowest = max(self.tally.slowest, what)
            if elapsed > SLOW:
                self.tally.slow.append(what)
        text = getattr(result.content[0], "text", "") if result.content else ""
        after = await self.written() if self.width == 1 else None
        if result.is_error:
            self._refused(call, arguments, text, before, after)
        else:
            self._answered(call, arguments, result.structured_content or {}, before, after)

    def _refused(
        self,
        call: Call,
        arguments: dict[str, Json],
        text: str,
        before: Written | None,
        after: Written | None,
    ) -> None:
        self.tally.refused += 1
        match = REFUSAL.match(text) or _UNKNOWN_ARGUMENT.match(text)
        if text.startswith("internal error"):
            self.tally.internal_errors += 1
            self.tally.fail("internal error", call, arguments, text)
        elif match is None:
            self.tally.fail("refusal not in the documented style", call, arguments, text)
        else:
            self.tally.refusals[f"{call.tool}.{match['field']}"] += 1
        if after != before:
            self.tally.fail("a refused call wrote", call, arguments, f"{before} -> {after}")

    def _answered(
        self,
        call: Call,
        arguments: dict[str, Json],
        document: dict[str, Any],
        before: Written | None,
        after: Written | None,
    ) -> None:
        self.tally.answered += 1
        self.tally.answered_per_tool[call.tool] += 1
        other = next(user for user in USERS if user != call.user)
        if before is not None and after is not None:
            if call.tool in READS and after != before:
                self.tally.fail("a read wrote", call, arguments, f"{before} -> {after}")
            if any(
                counts.get(other) != was.get(other)
                for counts, was in zip(after, before, strict=True)
            ):
                self.tally.fail("a call changed the other user's rows", call, arguments, "")
        shown = json.dumps(document)
        if any(task_id in shown for task_id in self.tasks[other]):
            self.tally.fail("an answer named the other user's task", call, arguments, shown[:300])
        if call.tool == "add_task":
            for task in document["tasks"] if "tasks" in document else [document["task"]]:
                if task["id"] not in self.acknowledged[call.user]:
                    self.tasks[call.user].append(task["id"])
                    for kind in ("recurrence", "reminders"):
                        if task.get(kind):
                            self.kinds.setdefault((call.user, kind), []).append(task["id"])
                self.acknowledged[call.user].add(task["id"])
        cursor = document.get("next_cursor")
        if cursor:
            self.cursors[call.user, _listing(call.tool, arguments)] = (cursor, arguments)

    async def written(self) -> Written:
        """Per user: tasks, the sum of their versions, outbox rows and reminder rows."""
        found = []
        for sql in (
            "SELECT user_id, count(*) FROM tasks GROUP BY user_id",
            "SELECT user_id, coalesce(sum(version), 0) FROM tasks GROUP BY user_id",
            "SELECT user_id, count(*) FROM outbox GROUP BY user_id",
            "SELECT user_id, count(*) FROM reminder_schedule GROUP BY user_id",
        ):
            found.append({str(user): int(n) for user, n in await rows(self.runtime, sql)})
        return tuple(found)

    async def settle(self) -> None:
        """Deliver what was committed (workers run on it), move the clock on (tasks fall due,
        snoozes pass) and list as each user."""
        await self.runtime.relay.drain()
        if self.clock is not None:
            self.clock.advance(STEP)
        for user, client in self.clients.items():
            for tool, arguments in (
                ("list_tasks", {"status": "all", "limit": 200}),
                ("list_tasks", {"sort": ["urgency"], "status": "all", "limit": 200}),
                ("agenda", {"limit": 100}),
            ):
                result = await client.call_tool(tool, arguments, raise_on_error=False)
                if result.is_error:
                    text = getattr(result.content[0], "text", "")
                    self.tally.fail("a listing broke", Call(user, tool, {}), arguments, text)

    async def _resolved(self, call: Call) -> dict[str, Json]:
        arguments = {name: await self._value(call, value) for name, value in call.arguments.items()}
        marker = call.arguments.get("cursor")
        listing = _listing(call.tool, call.arguments)
        if isinstance(marker, CursorOf) and marker.forged is None and marker.listing == listing:
            issued = self.cursors.get((call.user, listing))
            if issued is not None:  # the next page of the listing that issued the cursor
                return {**issued[1], "cursor": issued[0]}
        return arguments

    async def _value(self, call: Call, value: Json) -> Json:
        if isinstance(value, list):
            return [await self._value(call, item) for item in value]
        if isinstance(value, dict):
            return {key: await self._value(call, item) for key, item in value.items()}
        if isinstance(value, TaskIdOf):
            owner = {"self": call.user, "other": _other(call.user)}.get(value.owner, "")
            kind = {"recurring": "recurrence", "reminded": "reminders"}.get(value.kind)
            ids = self.kinds.get((owner, kind), []) if kind else []
            ids = ids or self.tasks.get(owner, [])
            return ids[value.pick % len(ids)] if ids else str(uuid.UUID(int=value.pick))
        if isinstance(value, CursorOf):
            return await self._cursor(call, value)
        if isinstance(value, Huge):
            return _huge(value)
        return value

    async def _cursor(self, call: Call, marker: CursorOf) -> str:
        listing, user = marker.listing, call.user
        if marker.forged == "other-listing":
            listing = LISTINGS[(LISTINGS.index(listing) + 1) % len(LISTINGS)]
        elif marker.forged == "other-user":
            user = _other(user)
        issued = self.cursors.get((user, listing)) or await self._first_cursor(user, listing)
        cursor = issued[0] if issued else _encoded({"k": listing, "o": 1, "f": "0" * 16})
        if marker.forged and marker.forged.startswith(("edit:", "drop:")):
            action, _, key = marker.forged.partition(":")
            data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
            if action == "drop":
                data.pop(key, None)
            else:
                data[key] = marker.value
            cursor = _encoded(data)
        return cursor

    async def _first_cursor(self, user: str, listing: str) -> tuple[str, dict[str, Json]] | None:
        arguments: dict[str, Json] = {"limit": 1, "status": "all"}
        if listing == "sorted":
            arguments["sort"] = ["due"]
        if listing == "task_history":
            arguments = {"limit": 1}
        tool = "list_tasks" if listing == "sorted" else listing
        result = await self.clients[user].call_tool(tool, arguments, raise_on_error=False)
        cursor = (result.structured_content or {}).get("next_cursor")
        return (cursor, arguments) if cursor else None

    async def check(self) -> list[str]:
        """After a run: every listing of every user works, each acknowledged add is there, each
        task's version equals its events, every event was delivered and none dead-lettered.
        Answers what is wrong (also kept in the tally's failures)."""
        problems: list[str] = []
        await self.runtime.relay.drain()
        for user, client in self.clients.items():
            listed = await self._every_page(client, "list_tasks", {"status": "all"}, problems)
            for key in ("due", "priority", "created", "updated", "title", "urgency"):
                for direction in ("asc", "desc"):
                    by = {"sort": [f"{key}:{direction}"], "status": "all"}
                    await self._every_page(client, "list_tasks", by, problems)
            await self._every_page(client, "list_tasks", {"status": "open"}, problems)
            await self._every_page(client, "list_tasks", {"overdue": True}, problems)
            await self._every_page(client, "task_history", {}, problems)
            for arguments in ({}, {"within": "P366D"}):
                result = await client.call_tool("list_reminders", arguments, raise_on_error=False)
                if result.is_error:
                    problems.append(f"{user}: list_reminders({arguments}) broke: {result.content}")
            ids = {task["id"] for task in listed}
            missing = self.acknowledged[user] - ids
            if missing:
                problems.append(f"{user}: acknowledged adds missing from list_tasks: {missing}")
            for task_id in sorted(self.acknowledged[user])[:200]:
                result = await client.call_tool("get_task", {"task_id": task_id})
                if result.is_error:
                    problems.append(f"{user}: get_task({task_id}) broke: {result.content}")
        problems += await self._invariants()
        self.tally.failures += problems
        return problems

    async def _every_page(
        self, client: Client, tool: str, arguments: dict[str, Json], problems: list[str]
    ) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        cursor = None
        for _ in range(10_000):
            result = await client.call_tool(
                tool, {**arguments, "limit": 200, "cursor": cursor}, raise_on_error=False
            )
            if result.is_error:
                problems.append(f"{tool}({arguments}) broke: {result.content}")
                return found
            page = result.structured_content or {}
            found += page.get("tasks", page.get("entries", []))
            cursor = page.get("next_cursor")
            if cursor is None:
                break
        return found

    async def _invariants(self) -> list[str]:
        problems = []
        ((tasks, occurrences),) = await rows(
            self.runtime, "SELECT count(*), count(recurred_from) FROM tasks"
        )
        self.tally.tasks_at_end, self.tally.occurrences_at_end = int(tasks), int(occurrences)
        versions = await rows(
            self.runtime,
            "SELECT t.id, t.version, count(o.id), count(DISTINCT o.sequence),"
            " min(o.sequence), max(o.sequence)"
            " FROM tasks t LEFT JOIN outbox o ON o.task_id = t.id AND o.event_type LIKE 'TASK_%'"
            " GROUP BY t.id, t.version",
        )
        for task_id, version, events, distinct, first, last in versions:
            if not version == events == distinct or (first, last) != (1, version):
                problems.append(
                    f"task {task_id}: version {version}, {events} events"
                    f" (sequences {first}..{last}, {distinct} distinct)"
                )
        for sql, what in (
            ("SELECT count(*) FROM outbox WHERE published_at IS NULL", "outbox rows unpublished"),
            ("SELECT count(*) FROM dead_letters", "events dead-lettered"),
        ):
            (count,) = (await rows(self.runtime, sql))[0]
            if count:
                problems.append(f"{count} {what}")
        return problems


def _listing(tool: str, arguments: Mapping[str, Json]) -> str:
    """Which listing a call's cursor belongs to (see LISTINGS)."""
    return "sorted" if tool == "list_tasks" and "sort" in arguments else tool


def _other(user: str) -> str:
    return next(other for other in USERS if other != user)


def _encoded(data: Mapping[str, Json]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _huge(value: Huge) -> Json:
    if value.kind == "list":
        return [f"t{n}" for n in range(value.size)]
    if value.kind == "tags":
        return [f"tag-{n}" for n in range(value.size)]
    if value.kind == "items":
        return [{"title": f"batch item {n}"} for n in range(value.size)]
    if value.kind == "ids":
        return [str(uuid.UUID(int=n)) for n in range(value.size)]
    if value.kind == "reminders":
        return [f"PT{n + 1}M" for n in range(value.size)]
    if value.kind == "exdates":
        start = dt.date(2026, 12, 2)
        days = (start + dt.timedelta(days=n) for n in range(value.size))
        return "RRULE:FREQ=DAILY\nEXDATE:" + ",".join(f"{d:%Y%m%d}T090000" for d in days)
    return ("x" * 9 + "é") * (value.size // 10) + "x" * (value.size % 10)


def _shown(arguments: Mapping[str, Json]) -> str:
    """The arguments as a short, readable line (a huge value shown by its size)."""
    parts = []
    for name, value in arguments.items():
        text = repr(value)
        parts.append(f"{name}={text[:80]}…[{len(text)}]" if len(text) > 100 else f"{name}={text}")
    return ", ".join(parts)
