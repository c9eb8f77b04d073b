"""Reminders embedded, on the fixed clock: firing, cancelling, re-dating, recurrence, restart,
duplicates, and the reminder tools through MCP. SQLite and PostgreSQL.

The clock stands at Monday 2026-11-23 10:00 UTC; the user's zone is Europe/Berlin.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from fastmcp import Client

from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from tests.support.database import envelopes, rows
from tests.support.tools import add, call, refused
from tests.support.waiting import eventually

NOON = "2026-11-23T12:00:00Z"


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


async def schedule(runtime: Runtime, task_id: str) -> list[tuple[str, str, bool]]:
    """(spec, state, late) of each reminder row of the task, by spec."""
    found = await rows(
        runtime,
        "SELECT spec, state, late FROM reminder_schedule WHERE task_id = :t ORDER BY spec",
        t=task_id,
    )
    return [(str(r[0]), str(r[1]), bool(r[2])) for r in found]


async def triggers(runtime: Runtime, task_id: str | None = None) -> list[dict[str, Any]]:
    """The REMINDER_TRIGGERED envelopes in the outbox, oldest first."""
    found = await envelopes(runtime, "event_type = 'REMINDER_TRIGGERED'")
    return [e for e in found if task_id is None or e["task_id"] == task_id]


async def has_triggers(runtime: Runtime, count: int) -> bool:
    return len(await triggers(runtime)) == count


async def fire_at(runtime: Runtime, clock: FixedClock, moment: str) -> list[str]:
    """Move the clock to `moment` and fire what is due; answer the specs fired."""
    clock.set(at(moment))
    return [r.spec for r in await runtime.reminders.fire_due()]


async def test_a_reminder_fires_once_at_its_moment_and_not_before(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await runtime.relay.drain()
    assert await schedule(runtime, task["id"]) == [("PT15M", "pending", False)]

    assert await fire_at(runtime, clock, "2026-11-23T11:44:59Z") == []
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == ["PT15M"]
    assert await fire_at(runtime, clock, "2026-11-23T11:50:00Z") == []

    [trigger] = await triggers(runtime)
    assert trigger["task_id"] == task["id"] and trigger["user_id"] == "alice"
    assert trigger["metadata"]["source"] == "dueflow.reminders"
    assert trigger["payload"]["task"]["title"] == "Call Bob"
    reminder = trigger["payload"]["reminder"]
    assert reminder["fire_at"] == "2026-11-23T11:45:00Z"
    assert reminder["fired_at"] == "2026-11-23T11:45:00Z"
    assert reminder["late"] is False and reminder["state"] == "fired"
    assert await schedule(runtime, task["id"]) == [("PT15M", "fired", False)]


@pytest.mark.parametrize("step", ["complete_task", "delete_task"])
async def test_completing_or_deleting_a_task_cancels_its_reminders(
    alice: Client, runtime: Runtime, clock: FixedClock, step: str
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "PT1H"])
    await runtime.relay.drain()
    await call(alice, step, task_id=task["id"])
    await runtime.relay.drain()

    assert await fire_at(runtime, clock, "2026-11-23T13:00:00Z") == []
    assert [s[1] for s in await schedule(runtime, task["id"])] == ["cancelled", "cancelled"]
    assert await triggers(runtime) == []


async def test_reopening_a_task_schedules_its_reminders_again(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await call(alice, "complete_task", task_id=task["id"])
    await call(alice, "reopen_task", task_id=task["id"])
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == ["PT15M"]


async def test_re_dating_a_task_moves_its_pending_reminders(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "2026-11-23T11:00:00Z"])
    await runtime.relay.drain()
    await call(alice, "update_task", task_id=task["id"], due="2026-11-23T14:00:00Z")
    await runtime.relay.drain()

    assert await fire_at(runtime, clock, "2026-11-23T11:00:00Z") == ["2026-11-23T11:00:00Z"]
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == []
    assert await fire_at(runtime, clock, "2026-11-23T13:45:00Z") == ["PT15M"]


async def test_a_reminder_that_fired_fires_again_only_for_a_new_due(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == ["PT15M"]
    await call(alice, "update_task", task_id=task["id"], title="Call Bob back")
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T11:59:00Z") == []
    await call(alice, "update_task", task_id=task["id"], due="2026-11-23T16:00:00Z")
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T15:45:00Z") == ["PT15M"]


async def test_a_trigger_for_a_task_changed_since_is_dropped_as_stale_and_recorded(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await runtime.relay.drain()
    # re-dated, but the worker has not seen it yet when the old moment comes
    await call(alice, "update_task", task_id=task["id"], due="2026-11-23T14:00:00Z")
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == ["PT15M"]  # handled: stale
    assert await triggers(runtime) == []
    [(state, reason)] = [
        (str(r[0]), str(r[1]))
        for r in await rows(
            runtime, "SELECT state, reason FROM reminder_schedule WHERE task_id = :t", t=task["id"]
        )
    ]
    assert state == "stale" and "re-dated" in reason and "13:45:00Z" in reason

    await runtime.relay.drain()  # the worker catches up: the new moment is scheduled
    assert await fire_at(runtime, clock, "2026-11-23T13:45:00Z") == ["PT15M"]
    assert len(await triggers(runtime)) == 1


async def test_a_reminder_whose_moment_passed_before_it_was_set_never_fires(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Soon", due="2026-11-23T10:30:00Z", reminders=["PT1H", "PT10M"])
    await runtime.relay.drain()
    assert await schedule(runtime, task["id"]) == [
        ("PT10M", "pending", False),
        ("PT1H", "passed", False),
    ]
    assert await fire_at(runtime, clock, "2026-11-23T10:20:00Z") == ["PT10M"]


async def test_the_next_occurrence_of_a_recurring_task_gets_its_own_reminders(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(
        alice, "Stand-up", due="2026-11-24T09:00:00Z", recurrence="FREQ=DAILY", reminders=["PT10M"]
    )
    await runtime.relay.drain()
    await call(alice, "complete_task", task_id=task["id"])
    await runtime.relay.drain()
    [following] = (await call(alice, "list_tasks"))["tasks"]
    assert following["id"] != task["id"]

    assert await schedule(runtime, task["id"]) == [("PT10M", "cancelled", False)]
    assert await schedule(runtime, following["id"]) == [("PT10M", "pending", False)]
    assert await fire_at(runtime, clock, "2026-11-24T08:50:00Z") == []
    assert await fire_at(runtime, clock, "2026-11-25T08:50:00Z") == ["PT10M"]
    assert [t["task_id"] for t in await triggers(runtime)] == [following["id"]]


async def test_reminders_missed_while_down_fire_once_on_start_marked_late(
    alice: Client, runtime: Runtime, clock: FixedClock, database_url: str, tmp_path: Path
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "PT5M"])
    await runtime.relay.drain()
    await runtime.close()  # the process is down from 10:00 to 13:00

    clock.set(at("2026-11-23T13:00:00Z"))
    again = await bootstrap(
        Settings.from_env(
            {"DUEFLOW_DATABASE_URL": database_url, "DUEFLOW_DATA_DIR": str(tmp_path)}
        ),
        clock=clock,
    )
    try:
        stop = asyncio.Event()
        timer = asyncio.create_task(again.workers.timer.run(stop))
        await eventually(
            lambda: has_triggers(again, 2), what="both missed reminders to fire after the restart"
        )
        stop.set()
        await timer
        fired = await triggers(again, task["id"])
        assert sorted(t["payload"]["reminder"]["spec"] for t in fired) == ["PT15M", "PT5M"]
        assert all(t["payload"]["reminder"]["late"] for t in fired)
        assert await again.reminders.fire_due() == []  # once
    finally:
        await again.close()


async def test_concurrent_firings_of_one_reminder_trigger_it_once(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await runtime.relay.drain()
    [(reminder_id,)] = await rows(
        runtime, "SELECT id FROM reminder_schedule WHERE task_id = :t", t=task["id"]
    )
    clock.set(at("2026-11-23T11:45:00Z"))
    outcomes = await asyncio.gather(
        *(runtime.reminders.fire(str(reminder_id)) for _ in range(4)),
        runtime.reminders.fire_due(),
        return_exceptions=True,
    )
    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert len(await triggers(runtime)) == 1


async def test_the_timer_fires_on_the_real_clock_never_early(
    runtime: Runtime, database_url: str, tmp_path: Path
) -> None:
    await runtime.close()  # it migrated the database; this test runs its own on the real clock
    settings = Settings.from_env(
        {"DUEFLOW_DATABASE_URL": database_url, "DUEFLOW_DATA_DIR": str(tmp_path)}
    )
    live = await bootstrap(settings)
    try:
        async with live.running():
            moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.6)
            added = await live.service.add(
                "alice",
                NewTask(
                    title="Soon",
                    due=(moment + dt.timedelta(hours=1)).isoformat(),
                    reminders=[moment.isoformat()],
                ),
            )
            await eventually(
                lambda: triggers(live, added.task.id), what="the reminder to fire on the real clock"
            )
        [trigger] = await triggers(live, added.task.id)
        fired_at = at(trigger["payload"]["reminder"]["fired_at"])
        assert fired_at >= at(trigger["payload"]["reminder"]["fire_at"])
        assert fired_at - moment < dt.timedelta(seconds=1)
    finally:
        await live.close()


async def test_list_reminders_shows_what_is_still_to_fire_with_the_task(
    alice: Client, bob: Client, runtime: Runtime, clock: FixedClock
) -> None:
    first = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "PT1H"])
    await add(alice, "Far away", due="2026-12-20T12:00:00Z", reminders=["PT15M"])
    await add(bob, "Bob's own", due=NOON, reminders=["PT15M"])
    await runtime.relay.drain()
    await fire_at(runtime, clock, "2026-11-23T11:00:00Z")

    listed = (await call(alice, "list_reminders"))["reminders"]
    assert [(r["task_id"], r["title"], r["fires_at"], r["state"]) for r in listed] == [
        (first["id"], "Call Bob", "2026-11-23T11:45:00Z", "pending")
    ]
    assert listed[0]["due"] == NOON and listed[0]["spec"] == "PT15M"
    assert len((await call(alice, "list_reminders", within="P30D"))["reminders"]) == 2
    assert len((await call(bob, "list_reminders"))["reminders"]) == 1
    text = await refused(alice, "list_reminders", within="soon")
    assert text.startswith("within:") and "PT30M" in text


async def test_snooze_reminds_again_later_and_silences_earlier_reminders(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "PT1H"])
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T11:00:00Z") == ["PT1H"]

    snoozed = await call(alice, "snooze_reminder", task_id=task["id"], duration="PT50M")
    assert snoozed["snoozed"]["fires_at"] == "2026-11-23T11:50:00Z"
    assert [r["spec"] for r in snoozed["silenced"]] == ["PT15M"]
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == []
    assert await fire_at(runtime, clock, "2026-11-23T11:50:00Z") == ["snooze"]

    until = await call(alice, "snooze_reminder", task_id=task["id"], until="2026-11-23T13:30")
    assert until["snoozed"]["fires_at"] == "2026-11-23T12:30:00Z"  # 13:30 in Berlin
    assert await fire_at(runtime, clock, "2026-11-23T12:30:00Z") == ["snooze"]


async def test_snooze_refuses_bad_input_and_other_users_tasks(
    alice: Client, bob: Client, runtime: Runtime
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    for arguments, field in [
        ({}, "until:"),
        ({"until": "2026-11-23T13:00", "duration": "PT5M"}, "until:"),
        ({"until": "2026-11-22T09:00"}, "until:"),
        ({"duration": "tomorrow"}, "duration:"),
        ({"duration": "P400D"}, "duration:"),
    ]:
        text = await refused(alice, "snooze_reminder", task_id=task["id"], **arguments)
        assert text.startswith(field) and "Fix:" in text, text
    assert "no task" in await refused(bob, "snooze_reminder", task_id=task["id"], duration="PT5M")
    await call(alice, "complete_task", task_id=task["id"])
    text = await refused(alice, "snooze_reminder", task_id=task["id"], duration="PT5M")
    assert "completed" in text and "reopen_task" in text
    assert await rows(runtime, "SELECT id FROM reminder_schedule WHERE spec = 'snooze'") == []


async def test_dismiss_silences_a_tasks_pending_reminders(
    alice: Client, bob: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M", "PT1H"])
    await runtime.relay.drain()
    assert "no task" in await refused(bob, "dismiss_reminder", task_id=task["id"])
    dismissed = await call(alice, "dismiss_reminder", task_id=task["id"])
    assert sorted(r["spec"] for r in dismissed["dismissed"]) == ["PT15M", "PT1H"]
    assert (await call(alice, "dismiss_reminder", task_id=task["id"]))["dismissed"] == []
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T12:00:00Z") == []
    cancelled = await rows(
        runtime, "SELECT count(*) FROM outbox WHERE event_type = 'REMINDER_CANCELLED'"
    )
    assert cancelled[0][0] == 2


async def test_add_task_echoes_reminders_with_their_utc_fire_times(alice: Client) -> None:
    task = await add(alice, "Call Bob", due="2026-11-23T13:00", reminders=["PT15M"])
    assert task["reminders"] == [{"spec": "PT15M", "fires_at": "2026-11-23T11:45:00Z"}]


async def test_a_fired_reminder_is_delivered_and_every_delivery_shows_in_the_history(
    alice: Client, runtime: Runtime, clock: FixedClock
) -> None:
    task = await add(alice, "Call Bob", due=NOON, reminders=["PT15M"])
    await runtime.relay.drain()
    assert await fire_at(runtime, clock, "2026-11-23T11:45:00Z") == ["PT15M"]
    await runtime.relay.drain()  # the notifications worker records one delivery per channel
    assert await runtime.workers.dispatcher.deliver_due() >= 1
    await runtime.relay.drain()  # the deliveries' outcomes reach the audit log

    deliveries = await rows(
        runtime,
        "SELECT channel, status FROM notification_deliveries WHERE task_id = :t ORDER BY channel",
        t=task["id"],
    )
    assert ("log", "delivered") in [(str(c), str(s)) for c, s in deliveries]
    history = (await call(alice, "task_history", task_id=task["id"]))["entries"]
    kinds = [entry["event_type"] for entry in history]
    assert kinds[-2:] == ["REMINDER_SCHEDULED", "TASK_CREATED"]  # newest first
    assert kinds.count("REMINDER_TRIGGERED") == 1
    delivered = [e for e in history if e["event_type"] == "REMINDER_DELIVERED"]
    assert sorted(e["details"]["delivery"]["channel"] for e in delivered) == sorted(
        str(c) for c, _ in deliveries
    )
    log_entry = next(e for e in delivered if e["details"]["delivery"]["channel"] == "log")
    assert log_entry["details"]["delivery"]["status"] == "delivered"
    assert log_entry["details"]["reminder"]["spec"] == "PT15M"
    assert log_entry["actor"] == "alice via the notifications worker"
