"""`dueflow worker notifications` as a Dapr app: a real CloudEvent of REMINDER_TRIGGERED becomes
deliveries, and the dispatcher the app's lifespan runs delivers them (no mcp channel there)."""

from __future__ import annotations

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime, worker_app
from tests.support.dapr_apps import CLOUDEVENTS, PUBSUB, client_for, cloudevent
from tests.support.notifications import SECRET, Receiver, deliveries, trigger
from tests.support.runtimes import settings_for
from tests.support.waiting import eventually


async def all_delivered(runtime: Runtime) -> bool:
    return {d["status"] for d in await deliveries(runtime)} == {"delivered"}


async def test_the_notifications_app_subscribes_to_reminders_and_delivers_a_trigger(
    runtime: Runtime, database_url: str, clock: FixedClock, receiver: Receiver
) -> None:
    settings = settings_for(
        database_url,
        DAPR_PUBSUB=PUBSUB,
        WEBHOOKS=f"alice={receiver.url}",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_ALLOW_PRIVATE="true",
    )
    envelope = trigger()

    async with (
        worker_app("notifications", settings, clock) as app,
        app.router.lifespan_context(app),
        client_for(app) as client,
    ):
        subscriptions = (await client.get("/dapr/subscribe")).json()
        first = await client.post(
            "/events/reminders", content=cloudevent(envelope, "reminders"), headers=CLOUDEVENTS
        )
        again = await client.post(
            "/events/reminders", content=cloudevent(envelope, "reminders"), headers=CLOUDEVENTS
        )
        await eventually(
            lambda: all_delivered(runtime), what="every channel to deliver the trigger"
        )

    assert [(s["topic"], s["route"]) for s in subscriptions] == [("reminders", "/events/reminders")]
    assert subscriptions[0]["deadLetterTopic"] == "reminders-dead-letter"
    assert (first.json(), again.json()) == ({"status": "SUCCESS"}, {"status": "SUCCESS"})
    found = await deliveries(runtime)
    assert sorted(d["channel"] for d in found) == ["log", "webhook"]
    assert {d["event_id"] for d in found} == {envelope["event_id"]}
    [post] = receiver.received
    assert post.signature_ok


async def test_a_trigger_the_app_cannot_read_is_dropped_to_the_dead_letter_topic(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> None:
    broken = trigger()
    broken["payload"]["reminder"] = "not an object"

    async with (
        worker_app("notifications", settings_for(database_url, DAPR_PUBSUB=PUBSUB), clock) as app,
        client_for(app) as client,
    ):
        answer = await client.post(
            "/events/reminders", content=cloudevent(broken, "reminders"), headers=CLOUDEVENTS
        )

    assert answer.json() == {"status": "DROP"}
    assert await deliveries(runtime) == []
