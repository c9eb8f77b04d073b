"""A triggered reminder is delivered once per channel, recorded, retried with backoff and
dead-lettered with its error; SQLite and PostgreSQL, a real webhook receiver on loopback."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from domain.channels import Notification, Sent
from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from dueflow.cli import failed_notifications
from tests.support.database import rows
from tests.support.notifications import LATER, SECRET, Receiver, deliveries, publish, trigger
from tests.support.runtimes import embedded_runtime
from tests.support.servers import free_port
from tests.support.waiting import eventually
from workers.notification_dispatch import NotificationDispatcher, build_dispatcher


async def test_a_trigger_becomes_one_delivery_per_channel_each_recorded_with_its_status(
    hooked: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    envelope = trigger()

    await publish(hooked, envelope)
    handled = await hooked.workers.dispatcher.deliver_due()

    assert handled == 3
    found = {d["channel"]: d for d in await deliveries(hooked)}
    assert {c: (d["status"], d["attempts"]) for c, d in found.items()} == {
        "log": ("delivered", 1),
        "webhook": ("delivered", 1),
        "mcp": ("skipped", 1),
    }
    assert {d["event_id"] for d in found.values()} == {envelope["event_id"]}
    assert found["webhook"]["delivered_at"] == clock.now()
    assert found["mcp"]["last_error"] == "no MCP session of 'alice' is connected"
    assert all(d["claimed_by"] is None for d in found.values())
    [post] = receiver.received
    assert post.signature_ok
    assert post.headers["x-dueflow-event-id"] == envelope["event_id"]
    assert post.headers["x-dueflow-timestamp"] == str(int(clock.now().timestamp()))
    assert post.body["event_id"] == envelope["event_id"]
    assert post.body["user_id"] == "alice"
    assert post.body["task"]["title"] == "Renew the passport"
    assert post.body["task"]["due"]["utc"] == "2026-11-23T10:15:00Z"
    assert post.body["reminder"]["spec"] == "PT15M"


async def test_a_redelivered_trigger_adds_nothing_and_is_posted_once(
    hooked: Runtime, receiver: Receiver
) -> None:
    envelope = trigger()

    await publish(hooked, envelope)
    await hooked.workers.dispatcher.deliver_due()
    await publish(hooked, envelope)
    await publish(hooked, envelope)
    again = await hooked.workers.dispatcher.deliver_due()

    assert again == 0
    assert len(await deliveries(hooked)) == 3
    assert len(receiver.received) == 1


async def test_only_triggers_notify_scheduled_and_cancelled_reminders_are_acknowledged(
    hooked: Runtime, receiver: Receiver
) -> None:
    scheduled = trigger(event_type="REMINDER_SCHEDULED")
    cancelled = trigger(event_type="REMINDER_CANCELLED")

    await publish(hooked, scheduled, cancelled)
    await hooked.workers.dispatcher.deliver_due()

    assert await deliveries(hooked) == []
    inbox = await rows(
        hooked, "SELECT event_id FROM processed_events WHERE consumer = 'notifications'"
    )
    assert {row[0] for row in inbox} == {scheduled["event_id"], cancelled["event_id"]}
    assert await hooked.workers.dead_letters.listed() == []


async def test_triggers_of_one_task_version_are_each_delivered_despite_sharing_a_sequence(
    hooked: Runtime,
) -> None:
    first = trigger()
    second = trigger(task_id=first["task_id"], spec="PT5M")

    await publish(hooked, first)
    await publish(hooked, second)
    await hooked.workers.dispatcher.deliver_due()

    found = await deliveries(hooked)
    assert {(d["event_id"], d["channel"]) for d in found if d["status"] == "delivered"} == {
        (first["event_id"], "log"),
        (first["event_id"], "webhook"),
        (second["event_id"], "log"),
        (second["event_id"], "webhook"),
    }


async def test_a_trigger_without_its_reminder_is_dead_lettered_not_dropped_silently(
    hooked: Runtime,
) -> None:
    broken = trigger()
    del broken["payload"]["reminder"]

    await publish(hooked, broken)

    assert await deliveries(hooked) == []
    [letter] = await hooked.workers.dead_letters.listed()
    assert (letter.consumer, letter.event_id) == ("notifications", broken["event_id"])


async def test_a_failing_webhook_is_retried_with_backoff_and_delivered_once_it_recovers(
    hooked: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    receiver.statuses = [503, 502]
    await publish(hooked, trigger())

    await hooked.workers.dispatcher.deliver_due()
    [first] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]
    not_yet = await hooked.workers.dispatcher.deliver_due()
    clock.advance(first["next_attempt_at"] - clock.now())
    await hooked.workers.dispatcher.deliver_due()
    [second] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]
    clock.advance(second["next_attempt_at"] - clock.now())
    await hooked.workers.dispatcher.deliver_due()
    [last] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]

    assert (first["status"], first["attempts"]) == ("pending", 1)
    assert first["last_error"].startswith("HTTP 503")
    # retry base 10 s: the first wait is 5-10 s, the second 10-20 s (jitter 0.5..1)
    first_wait = first["next_attempt_at"] - dt.datetime(2026, 11, 23, 10, 0, tzinfo=dt.UTC)
    assert dt.timedelta(seconds=5) <= first_wait <= dt.timedelta(seconds=10)
    second_wait = second["next_attempt_at"] - first["next_attempt_at"]
    assert dt.timedelta(seconds=10) <= second_wait <= dt.timedelta(seconds=20)
    assert not_yet == 0
    assert (second["status"], second["attempts"]) == ("pending", 2)
    assert (last["status"], last["attempts"], last["last_error"]) == ("delivered", 3, None)
    assert len(receiver.received) == 3
    assert all(post.signature_ok for post in receiver.received)


async def test_a_webhook_failing_every_time_becomes_dead_with_its_error_and_an_error_log(
    hooked: Runtime,
    receiver: Receiver,
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    receiver.statuses = [500] * 10
    envelope = trigger()
    await publish(hooked, envelope)

    with caplog.at_level(logging.WARNING, logger="dueflow.notifications"):
        for _ in range(5):
            await hooked.workers.dispatcher.deliver_due()
            clock.advance(LATER)

    [hook] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]
    assert (hook["status"], hook["attempts"]) == ("dead", 3)
    assert hook["last_error"].startswith("HTTP 500")
    assert len(receiver.received) == 3
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert envelope["event_id"] in errors[0].getMessage()
    assert "dead after 3 attempt(s)" in errors[0].getMessage()
    [failed] = await hooked.workers.dispatcher.failed()
    assert (failed.channel, failed.event_id, failed.attempts) == (
        "webhook",
        envelope["event_id"],
        3,
    )


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422, 301])
async def test_a_client_error_or_redirect_is_dead_at_once_since_retrying_cannot_help(
    hooked: Runtime, receiver: Receiver, status: int
) -> None:
    receiver.statuses = [status]
    await publish(hooked, trigger())

    await hooked.workers.dispatcher.deliver_due()

    [hook] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]
    assert (hook["status"], hook["attempts"]) == ("dead", 1)
    assert hook["last_error"].startswith(f"HTTP {status}")


@pytest.mark.parametrize("status", [408, 429, 500, 503])
async def test_throttling_and_server_errors_are_retried(
    hooked: Runtime, receiver: Receiver, status: int
) -> None:
    receiver.statuses = [status]
    await publish(hooked, trigger())

    await hooked.workers.dispatcher.deliver_due()

    [hook] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]
    assert (hook["status"], hook["attempts"]) == ("pending", 1)


async def test_a_webhook_slower_than_the_timeout_is_retried(
    hooked: Runtime, receiver: Receiver
) -> None:
    receiver.delay_seconds = 2.0
    await publish(hooked, trigger())

    await hooked.workers.dispatcher.deliver_due()

    [hook] = [d for d in await deliveries(hooked) if d["channel"] == "webhook"]
    assert (hook["status"], hook["attempts"]) == ("pending", 1)
    assert hook["last_error"] == "timed out after 0.5s"


async def test_a_webhook_nobody_listens_on_is_retried_as_a_connection_error(
    database_url: str, tmp_path: Path, clock: FixedClock
) -> None:
    runtime = await embedded_runtime(
        database_url,
        tmp_path,
        clock,
        WEBHOOKS=f"alice=http://127.0.0.1:{free_port()}/hook",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE="true",
    )
    try:
        await publish(runtime, trigger())
        await runtime.workers.dispatcher.deliver_due()
        [hook] = [d for d in await deliveries(runtime) if d["channel"] == "webhook"]
    finally:
        await runtime.close()

    assert (hook["status"], hook["attempts"]) == ("pending", 1)
    assert hook["last_error"].startswith("ConnectError")


async def test_a_loopback_webhook_without_the_allow_flag_is_refused_and_never_called(
    database_url: str, tmp_path: Path, clock: FixedClock, receiver: Receiver
) -> None:
    # the URL names `localhost`: only resolution at send time shows it is loopback
    url = receiver.url.replace("127.0.0.1", "localhost")
    runtime = await embedded_runtime(
        database_url,
        tmp_path,
        clock,
        WEBHOOKS=f"alice={url}",
        WEBHOOK_SECRET=SECRET,
    )
    try:
        await publish(runtime, trigger())
        await runtime.workers.dispatcher.deliver_due()
        [hook] = [d for d in await deliveries(runtime) if d["channel"] == "webhook"]
    finally:
        await runtime.close()

    assert (hook["status"], hook["attempts"]) == ("dead", 1)
    assert "refused" in hook["last_error"]
    assert "loopback" in hook["last_error"]
    assert receiver.received == []


async def test_two_dispatchers_on_one_database_deliver_each_row_exactly_once(
    hooked: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    receiver.delay_seconds = 0.05  # long enough for the passes to overlap
    envelopes = [trigger(title=f"Task {n}") for n in range(6)]
    await publish(hooked, *envelopes)
    config = hooked.settings.notification_config(mcp=False)
    others = [build_dispatcher(hooked.engine, config, clock) for _ in range(2)]

    try:
        counts = await asyncio.gather(
            hooked.workers.dispatcher.deliver_due(), *(d.deliver_due() for d in others)
        )
    finally:
        for other in others:
            await other.aclose()

    assert sum(counts) == 6 * 3
    posted = sorted(post.body["event_id"] for post in receiver.received)
    assert posted == sorted(e["event_id"] for e in envelopes)
    found = await deliveries(hooked)
    assert {d["attempts"] for d in found} == {1}
    assert {d["status"] for d in found} == {"delivered", "skipped"}


async def test_a_row_leased_by_a_live_dispatcher_waits_until_its_lease_runs_out(
    hooked: Runtime, receiver: Receiver, clock: FixedClock
) -> None:
    await publish(hooked, trigger())
    async with hooked.engine.begin() as conn:
        # as if another replica claimed every row and died while delivering
        from sqlalchemy import text

        await conn.execute(
            text("UPDATE notification_deliveries SET claimed_by = 'gone', claimed_until = :until"),
            {"until": clock.now() + dt.timedelta(minutes=5)},
        )

    while_leased = await hooked.workers.dispatcher.deliver_due()
    clock.advance(dt.timedelta(minutes=5))
    after = await hooked.workers.dispatcher.deliver_due()

    assert while_leased == 0
    assert after == 3
    assert len(receiver.received) == 1


async def test_the_dispatcher_running_in_the_background_delivers_as_soon_as_a_trigger_lands(
    hooked: Runtime, receiver: Receiver
) -> None:
    async with hooked.running():
        await publish(hooked, trigger())
        await eventually(lambda: receiver.received, what="the webhook to receive the trigger")

    assert receiver.received[0].signature_ok


async def test_the_cli_lists_dead_deliveries_with_their_errors(
    hooked: Runtime, receiver: Receiver, capsys: pytest.CaptureFixture[str]
) -> None:
    receiver.statuses = [404]
    envelope = trigger()
    await publish(hooked, envelope)
    await hooked.workers.dispatcher.deliver_due()

    await failed_notifications(hooked.settings, 10)

    out = capsys.readouterr().out
    [line] = out.splitlines()
    assert "\twebhook\talice\t" in line
    assert envelope["event_id"] in line
    assert "HTTP 404" in line


async def test_an_outcome_is_not_recorded_over_a_claim_that_passed_to_another_dispatcher(
    hooked: Runtime, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    taken_over: list[int] = []

    class SlowLog:
        """A log channel so slow that the delivery's lease runs out and another replica claims
        it while this send is still under way."""

        name = "log"

        async def send(self, notification: Notification) -> Sent:
            async with hooked.engine.begin() as conn:
                await conn.execute(
                    sa.text(
                        "UPDATE notification_deliveries SET claimed_by = 'other',"
                        " claimed_until = :until WHERE id = :id"
                    ),
                    {
                        "until": clock.now() + dt.timedelta(minutes=5),
                        "id": notification.delivery_id,
                    },
                )
            taken_over.append(notification.delivery_id)
            return Sent()

    await publish(hooked, trigger())
    dispatcher = NotificationDispatcher(hooked.engine, {"log": SlowLog()}, clock)
    with caplog.at_level(logging.WARNING, logger="dueflow.notifications"):
        await dispatcher.deliver_due()

    [delivery_id] = taken_over
    [log_row] = [d for d in await deliveries(hooked) if d["channel"] == "log"]
    assert (log_row["status"], log_row["attempts"], log_row["claimed_by"]) == (
        "pending",
        0,
        "other",
    )
    delivered_events = await rows(
        hooked, "SELECT count(*) FROM outbox WHERE event_type = 'REMINDER_DELIVERED'"
    )
    assert delivered_events[0][0] == 0
    assert f"delivery {delivery_id}: the lease ran out" in caplog.text
