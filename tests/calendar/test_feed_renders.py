"""The feed render cache (domain.adapters.calendar_renders) on both databases: a feed assembled
from kept components is the same text the codec writes from the tasks; the calendar consumer
keeps a changed task's component for users with a live feed and drops it when the task leaves
the feed; a process that never rendered a component serves the one in the database while its
fingerprint matches, and renders it again once the task, its UID or the codec revision moves;
entries are kept per user."""

from __future__ import annotations

import sqlalchemy as sa

from domain.adapters import icalendar_codec
from domain.adapters.calendar_files import CalendarFiles
from domain.adapters.calendar_renders import FeedRenderCache
from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime
from tests.support.database import rows, scalar
from tests.support.runtimes import NOW

SHAPES = [
    NewTask(title="All-day", due="2026-12-10", tags=["home"], reminders=["P1D"]),
    NewTask(
        title="Timed in Berlin",
        due="2026-12-10T09:30",
        timezone="Europe/Berlin",
        reminders=["PT15M", "2026-12-10T06:00:00Z"],
        priority="high",
    ),
    NewTask(
        title="Weekly in New York",
        due="2026-12-11T18:00",
        timezone="America/New_York",
        recurrence="FREQ=WEEKLY;COUNT=5\nEXDATE:20261218T180000",
        description="With a description",
    ),
    NewTask(title="No due"),
]
IMPORTED = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//test//EN
BEGIN:VTODO
UID:imported-1@example.org
SUMMARY:Imported
DUE;VALUE=DATE:20261212
SEQUENCE:4
LAST-MODIFIED:20261101T101010Z
END:VTODO
END:VCALENDAR
"""


async def _feed(runtime: Runtime, user: str, events: bool = False) -> str:
    _made, secret = await runtime.calendar.feeds.create(user, "feed", events=events)
    return secret


async def _text(calendar: CalendarFiles, secret: str) -> str:
    version = await calendar.feed(secret)
    assert version is not None
    text = await calendar.feed_text(version)
    await calendar.renders.aclose()  # the components rendered are written after the answer
    return text


def _fresh(runtime: Runtime) -> CalendarFiles:
    """The calendar of another process on the same database: nothing kept in memory."""
    old = runtime.calendar
    renders = FeedRenderCache(runtime.engine)
    return CalendarFiles(old.exchange, old.feeds, FixedClock(NOW), "Europe/Berlin", renders)


async def _written(runtime: Runtime, events: bool) -> str:
    """The feed's text as the codec writes it from the tasks, with nothing kept."""
    tasks = await runtime.calendar.exchange.feed_tasks("alice")
    return icalendar_codec.render(tasks, None, events=events, name="Dueflow: feed")


async def test_a_feed_from_kept_components_is_the_text_the_codec_writes_from_the_tasks(
    runtime: Runtime,
) -> None:
    todos, events = await _feed(runtime, "alice"), await _feed(runtime, "alice", events=True)
    for shape in SHAPES:
        await runtime.service.add("alice", shape)
    await runtime.calendar.import_text("alice", IMPORTED)
    await runtime.relay.drain()
    for secret, form in ((todos, False), (events, True)):
        expected = await _written(runtime, form)
        assert expected.count("BEGIN:V") > 4
        assert await _text(runtime.calendar, secret) == expected  # filled by the consumer
        assert await _text(_fresh(runtime), secret) == expected  # read from the database
        await _clear(runtime)
        assert await _text(_fresh(runtime), secret) == expected  # rendered on a miss


async def _clear(runtime: Runtime) -> None:
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.text("DELETE FROM calendar_renders"))


async def test_the_consumer_keeps_a_changed_task_only_for_users_with_a_live_feed(
    runtime: Runtime,
) -> None:
    bobs = (await runtime.service.add("bob", SHAPES[1])).task
    await _feed(runtime, "alice")
    task = (await runtime.service.add("alice", SHAPES[1])).task
    await runtime.relay.drain()
    kept = await rows(runtime, "SELECT user_id, task_id, form FROM calendar_renders")
    assert [tuple(row) for row in kept] == [("alice", task.id, "vtodo")]
    assert bobs.id not in {row[1] for row in kept}

    await runtime.service.complete("alice", task.id)
    await runtime.relay.drain()
    assert await scalar(runtime, "SELECT count(*) FROM calendar_renders") == 0
    await runtime.service.reopen("alice", task.id)
    await runtime.relay.drain()
    assert await scalar(runtime, "SELECT count(*) FROM calendar_renders") == 1
    await runtime.service.delete("alice", task.id)
    await runtime.relay.drain()
    assert await scalar(runtime, "SELECT count(*) FROM calendar_renders") == 0


async def test_one_pass_keeps_each_task_as_it_last_stands_in_the_forms_its_user_s_feeds_show(
    runtime: Runtime,
) -> None:
    await _feed(runtime, "alice")
    await _feed(runtime, "carol", events=True)
    revoked, _secret = await runtime.calendar.feeds.create("dave", "old")
    await runtime.calendar.feeds.revoke("dave", revoked.id)
    await runtime.relay.drain()
    made = {}
    for user in ("alice", "bob", "carol", "dave"):
        made[user] = (
            await runtime.service.add(user, NewTask(title="Dated", due="2026-12-10"))
        ).task
    await runtime.service.update("alice", made["alice"].id, {"title": "Renamed"})

    assert await runtime.relay.drain_once() == 4  # each user's first change, in one pass
    assert await runtime.relay.drain_once() == 1  # then the task's next change

    kept = await rows(runtime, "SELECT user_id, task_id, form, text FROM calendar_renders")
    assert sorted((user, task, form) for user, task, form, _text in kept) == sorted(
        [("alice", made["alice"].id, "vtodo"), ("carol", made["carol"].id, "vevent")]
    )
    alices = next(text for user, _task, _form, text in kept if user == "alice")
    assert "SUMMARY:Renamed" in alices


async def test_a_kept_component_is_served_until_its_task_changes(runtime: Runtime) -> None:
    secret = await _feed(runtime, "alice")
    task = (await runtime.service.add("alice", SHAPES[1])).task
    await runtime.relay.drain()
    await _mark(runtime, "SUMMARY:Timed in Berlin", "SUMMARY:Kept in the database")
    # another process never rendered it: the database's entry is what it serves
    assert "SUMMARY:Kept in the database" in await _text(_fresh(runtime), secret)

    await runtime.service.update("alice", task.id, {"title": "Renamed"})  # no relay yet
    text = await _text(_fresh(runtime), secret)
    assert "SUMMARY:Renamed" in text and "Kept in the database" not in text


async def test_a_new_sequence_or_another_fingerprint_renders_the_component_again(
    runtime: Runtime,
) -> None:
    secret = await _feed(runtime, "alice")
    await runtime.calendar.import_text("alice", IMPORTED)
    await runtime.relay.drain()
    await _mark(runtime, "SUMMARY:Imported", "SUMMARY:Marked")
    assert "SUMMARY:Marked" in await _text(_fresh(runtime), secret)
    newer = IMPORTED.replace("SEQUENCE:4", "SEQUENCE:9").replace("Imported", "Imported again")
    await runtime.calendar.import_text("alice", newer)  # the link and the task move, no relay
    assert "SUMMARY:Imported again" in await _text(_fresh(runtime), secret)
    async with runtime.engine.begin() as conn:
        await conn.execute(sa.text("UPDATE calendar_renders SET fingerprint = 'other revision'"))
    assert "SUMMARY:Imported again" in await _text(_fresh(runtime), secret)


async def _mark(runtime: Runtime, old: str, new: str) -> None:
    async with runtime.engine.begin() as conn:
        changed = await conn.execute(
            sa.text("UPDATE calendar_renders SET text = replace(text, :old, :new)"),
            {"old": old, "new": new},
        )
        assert changed.rowcount == 1


async def test_kept_components_are_per_user(runtime: Runtime) -> None:
    alice, bob = await _feed(runtime, "alice"), await _feed(runtime, "bob")
    await runtime.service.add("alice", NewTask(title="Alice's", due="2026-12-10"))
    await runtime.service.add("bob", NewTask(title="Bob's", due="2026-12-10"))
    await runtime.relay.drain()
    owners = await rows(
        runtime,
        "SELECT r.user_id, t.user_id FROM calendar_renders r JOIN tasks t ON t.id = r.task_id",
    )
    assert sorted(tuple(row) for row in owners) == [("alice", "alice"), ("bob", "bob")]
    fresh = _fresh(runtime)
    assert "Bob's" not in await _text(fresh, alice) and "Alice's" in await _text(fresh, alice)
    assert "Alice's" not in await _text(fresh, bob)


async def test_a_new_feed_renders_the_tasks_made_before_it_ahead_of_its_first_request(
    runtime: Runtime,
) -> None:
    for shape in SHAPES:
        await runtime.service.add("alice", shape)
    await runtime.service.add("bob", SHAPES[0])
    await runtime.relay.drain()
    assert await scalar(runtime, "SELECT count(*) FROM calendar_renders") == 0  # no feed yet

    _made, secret = await runtime.calendar.create_feed("alice", "feed", events=False)
    await runtime.calendar.aclose()  # the rendering ahead runs after the feed is answered
    kept = await rows(runtime, "SELECT user_id, form FROM calendar_renders")
    assert sorted(tuple(row) for row in kept) == [("alice", "vtodo")] * 3  # the dated ones
    async with runtime.engine.begin() as conn:
        await conn.execute(
            sa.text("UPDATE calendar_renders SET text = replace(text, :old, :new)"),
            {"old": "SUMMARY:All-day", "new": "SUMMARY:Rendered ahead"},
        )
    # another replica's first request reads what was rendered ahead
    assert "SUMMARY:Rendered ahead" in await _text(_fresh(runtime), secret)
