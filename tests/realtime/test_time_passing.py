"""Time passing with no change made: a real WebSocket client of the realtime app (`dueflow worker
realtime`) is sent a `time` message when a due moment passes and when the user's day turns, as
the fixed clock is moved; and the turn schedule underneath, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from starlette.applications import Starlette
from websockets.asyncio.client import ClientConnection

from domain.adapters.open_dues_sql import SqlOpenDues
from domain.clock import FixedClock
from domain.service import NewTask
from domain.turns import Turn, TurnSchedule
from dueflow.bootstrap import Runtime, worker_app
from tests.support.dapr_apps import client_for, deliver
from tests.support.database import envelopes
from tests.support.realtime import next_message, open_socket, quiet
from tests.support.runtimes import settings_for
from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, serving
from tests.support.waiting import eventually

BERLIN = ZoneInfo("Europe/Berlin")
# the fixed clock starts at 2026-11-23 10:00 UTC: 11:00 in Berlin, whose day ends at 23:00 UTC
MIDNIGHT = dt.datetime(2026, 11, 23, 23, 0, tzinfo=dt.UTC)
FEED = "/events/feed"


@pytest.fixture
async def app(runtime: Runtime, database_url: str, clock: FixedClock) -> AsyncIterator[Starlette]:
    settings = settings_for(
        database_url,
        TOKENS=f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob",
        TIMEZONE="Europe/Berlin",
        REALTIME_HEARTBEAT_SECONDS="0.2",
    )
    async with worker_app("realtime", settings, clock) as served:
        yield served


async def next_time(socket: ClientConnection) -> dict[str, Any]:
    """The next `time` message (changes before it are passed over)."""
    while (message := await next_message(socket))["type"] != "time":
        assert message["type"] == "change", message
    return message


async def test_a_socket_is_told_when_a_due_passes_and_when_the_day_turns_and_no_other_is(
    app: Starlette, runtime: Runtime, clock: FixedClock
) -> None:
    service = runtime.service
    call = (await service.add("alice", NewTask(title="Call", due="2026-11-23T13:00"))).task
    today = (await service.add("alice", NewTask(title="Shop", due="2026-11-23"))).task
    await service.add("alice", NewTask(title="Tomorrow", due="2026-11-24"))
    bobs = (await service.add("bob", NewTask(title="Bob's", due="2026-11-23T12:00"))).task
    async with serving(app) as base:
        alice = await open_socket(base, ALICE_TOKEN)
        bob = await open_socket(base, BOB_TOKEN)
        assert await quiet(alice, 0.2)  # nothing has passed yet

        clock.set(dt.datetime(2026, 11, 23, 12, 0, 1, tzinfo=dt.UTC))  # 13:00:01 in Berlin
        message = await next_time(alice)
        assert message == {
            "type": "time",
            "reason": "due",
            "today": "2026-11-23",
            "at": "2026-11-23T12:00:01Z",
            "task_ids": [call.id],
            "more": False,
        }
        # bob's own due (12:00 Berlin) passed as well: told to bob only
        assert (await next_time(bob))["task_ids"] == [bobs.id]

        clock.set(MIDNIGHT + dt.timedelta(seconds=1))
        turned = await next_time(alice)
        assert (turned["reason"], turned["today"]) == ("day", "2026-11-24")
        assert turned["task_ids"] == [today.id]  # today's all-day task is overdue now
        assert (await next_time(bob))["reason"] == "day"
        assert await quiet(alice, 0.2) and await quiet(bob, 0.2)
        await alice.close()
        await bob.close()


async def test_a_change_that_brings_the_earliest_due_forward_reschedules_the_turn(
    app: Starlette, runtime: Runtime, clock: FixedClock
) -> None:
    await runtime.service.add("alice", NewTask(title="Later", due="2026-11-23T15:00"))
    async with serving(app) as base, client_for(app) as client:
        alice = await open_socket(base, ALICE_TOKEN)
        added = await runtime.service.add("alice", NewTask(title="Soon", due="2026-11-23T11:30"))
        sooner = added.task
        [created] = await envelopes(runtime, f"task_id = '{sooner.id}'")
        assert await deliver(client, created, "task-updates", FEED) == "SUCCESS"
        assert (await next_message(alice))["event"] == "TASK_CREATED"

        clock.set(dt.datetime(2026, 11, 23, 10, 30, 1, tzinfo=dt.UTC))  # 11:30:01 in Berlin
        message = await next_time(alice)
        assert (message["reason"], message["task_ids"]) == ("due", [sooner.id])
        await alice.close()


class Told:
    """The turns a schedule told, as they come."""

    def __init__(self) -> None:
        self.turns: list[Turn] = []

    async def __call__(self, turn: Turn) -> None:
        self.turns.append(turn)


async def test_the_schedule_follows_only_watched_users_and_stops_when_none_is_left(
    runtime: Runtime, clock: FixedClock
) -> None:
    told = Told()
    turns = TurnSchedule(SqlOpenDues(runtime.engine), clock, BERLIN, told)
    due = (await runtime.service.add("alice", NewTask(title="Call", due="2026-11-23T12:00"))).task
    assert not turns.running
    turns.watch("alice")
    await eventually(lambda: turns.next_turn("alice"), what="alice's next turn")
    assert turns.next_turn("alice") == dt.datetime(2026, 11, 23, 11, 0, 0, 1, tzinfo=dt.UTC)

    await runtime.service.complete("alice", due.id)  # her only due: the day's end is next
    turns.reconsider("alice")
    await eventually(lambda: turns.next_turn("alice") == MIDNIGHT, what="the day's end")

    clock.set(MIDNIGHT)
    await eventually(lambda: told.turns, what="the day's turn")
    [turn] = told.turns
    assert (turn.reason, turn.today, turn.task_ids) == ("day", dt.date(2026, 11, 24), ())

    turns.unwatch("alice")
    await eventually(lambda: not turns.running, what="the schedule to stop")
    await turns.aclose()


async def test_a_turn_names_at_most_its_limit_of_tasks_and_says_there_were_more(
    runtime: Runtime, clock: FixedClock
) -> None:
    for n in range(5):
        await runtime.service.add("alice", NewTask(title=f"Due {n}", due=f"2026-11-23T12:0{n}"))
    told = Told()
    turns = TurnSchedule(SqlOpenDues(runtime.engine), clock, BERLIN, told, ids=3)
    turns.watch("alice")
    clock.set(dt.datetime(2026, 11, 23, 11, 10, tzinfo=dt.UTC))  # all five passed at once
    await eventually(lambda: told.turns, what="the turn")
    [turn] = told.turns
    assert (len(turn.task_ids), turn.more) == (3, True)
    await asyncio.sleep(0.05)
    assert len(told.turns) == 1  # told once: the next look starts after this one
    await turns.aclose()
