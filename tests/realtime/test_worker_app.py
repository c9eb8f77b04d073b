"""`dueflow worker realtime` as a Dapr app: its subscriptions, CloudEvents on its topic routes,
what reaches a WebSocket client, and the bounded queue of a connection that falls behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker
from starlette.applications import Starlette
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime, worker_app
from dueflow.gateway import gateway_routes
from dueflow.settings import Settings
from tests.support.dapr_apps import CLOUDEVENTS, client_for, cloudevent, deliver
from tests.support.database import envelopes
from tests.support.realtime import (
    changes,
    next_message,
    offering,
    open_socket,
    quiet,
    socket_url,
)
from tests.support.runtimes import settings_for
from tests.support.servers import ALICE_TOKEN, BOB_TOKEN, serving
from workers.consumer import ConsumerRunner, Received
from workers.live_hub import Hub
from workers.realtime import realtime_consumer

TOKENS = f"{ALICE_TOKEN}=alice,{BOB_TOKEN}=bob"
FEED = "/events/feed"  # the feed group's routes


@pytest.fixture
async def app(runtime: Runtime, database_url: str, clock: FixedClock) -> AsyncIterator[Starlette]:
    async with worker_app("realtime", replica_settings(database_url), clock) as served:
        yield served


def replica_settings(database_url: str) -> Settings:
    """A gateway replica's settings, its components named otherwise than the defaults."""
    return settings_for(
        database_url,
        TOKENS=TOKENS,
        REALTIME_HEARTBEAT_SECONDS="0.2",
        DAPR_PUBSUB="pubsub-realtime",
        REALTIME_FEED_PUBSUB="realtime-feed",
    )


async def alice_changes(runtime: Runtime) -> list[dict[str, Any]]:
    """Alice adds a task and renames it; the outbox's envelopes (the relay does not run)."""
    added = await runtime.service.add("alice", NewTask(title="Water plants", tags=["home"]))
    await runtime.service.update("alice", added.task.id, {"title": "Water the plants"})
    return await envelopes(runtime, "user_id = 'alice'")


async def test_the_app_subscribes_task_updates_and_reminders_and_answers_probes(
    app: Starlette,
) -> None:
    async with client_for(app) as client:
        subscribed = (await client.get("/dapr/subscribe")).json()
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    routes = {(s["pubsubname"], s["topic"]): s["route"] for s in subscribed}
    assert routes == {
        # every replica its own consumer: it pushes what the feed holds to its sockets
        ("pubsub-realtime", "task-updates"): "/events/task-updates",
        ("pubsub-realtime", "reminders"): "/events/reminders",
        # one shared, durable group: it writes the feed
        ("realtime-feed", "task-updates"): "/events/feed/task-updates",
        ("realtime-feed", "reminders"): "/events/feed/reminders",
    }
    letters = {s["route"]: s.get("deadLetterTopic") for s in subscribed}
    assert letters["/events/feed/task-updates"] == "task-updates-dead-letter"
    assert letters["/events/feed/reminders"] == "reminders-dead-letter"
    assert letters["/events/task-updates"] is None and letters["/events/reminders"] is None
    assert (health.status_code, ready.status_code) == (200, 200)


async def test_a_delivered_change_reaches_its_users_socket_once_and_in_order(
    app: Starlette, runtime: Runtime
) -> None:
    created, updated = await alice_changes(runtime)
    async with serving(app) as base, client_for(app) as client:
        alice = await open_socket(base, ALICE_TOKEN)
        bob = await open_socket(base, BOB_TOKEN)
        assert await deliver(client, created, "task-updates", FEED) == "SUCCESS"
        assert await deliver(client, updated, "task-updates", FEED) == "SUCCESS"
        assert await deliver(client, updated, "task-updates", FEED) == "SUCCESS"  # redelivered
        assert await deliver(client, created, "task-updates", FEED) == "SUCCESS"  # late, stale
        first, second = await changes(alice, 2)
        # a redelivered event goes out again with its own position (another replica may have
        # written it): the client drops what it has seen by position
        assert (first["event"], second["event"]) == ("TASK_CREATED", "TASK_UPDATED")
        assert (first["position"], second["position"]) == (1, 2)
        assert second["changes"] == {"title": ["Water plants", "Water the plants"]}
        assert second["task"]["title"] == "Water the plants" and second["task"]["tags"] == ["home"]
        assert await quiet(alice) and await quiet(bob)

        malformed = await client.post(
            "/events/feed/task-updates",
            content=cloudevent({"event_id": "x"}, "task-updates"),
            headers=CLOUDEVENTS,
        )
        assert malformed.json()["status"] == "DROP"
        for socket in (alice, bob):
            await socket.close()


async def test_a_fired_reminder_is_sent_and_other_reminder_events_are_not(
    app: Starlette, runtime: Runtime
) -> None:
    created, _ = await alice_changes(runtime)
    snapshot = created["payload"]["task"]
    scheduled = {**created, "event_id": "11111111-1111-1111-1111-111111111111"}
    scheduled |= {"event_type": "REMINDER_SCHEDULED", "payload": {"task": snapshot, "changes": {}}}
    fired = {**scheduled, "event_id": "22222222-2222-2222-2222-222222222222"}
    fired |= {
        "event_type": "REMINDER_TRIGGERED",
        "payload": {"task": snapshot, "changes": {}, "reminder": {"spec": "PT0S"}},
    }
    async with serving(app) as base, client_for(app) as client:
        alice = await open_socket(base, ALICE_TOKEN)
        assert await deliver(client, scheduled, "reminders", FEED) == "SUCCESS"
        assert await deliver(client, scheduled, "reminders") == "SUCCESS"  # nothing to push
        assert await deliver(client, fired, "reminders", FEED) == "SUCCESS"
        message = await next_message(alice)
        assert (message["event"], message["reminder"]) == ("REMINDER_TRIGGERED", {"spec": "PT0S"})
        assert await quiet(alice)
        await alice.close()


async def test_a_connection_that_falls_behind_its_queue_is_closed_and_resumes_without_loss(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> None:
    settings = settings_for(database_url, TOKENS=TOKENS, REALTIME_QUEUE_SIZE="2")
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    hub = Hub(settings.realtime_queue_size)
    app = Starlette(routes=gateway_routes(settings, runtime.engine, sessions, clock, hub))
    consumer = realtime_consumer(clock, "UTC", hub.deliver)
    task = (await runtime.service.add("alice", NewTask(title="Burst"))).task
    for round_ in range(5):
        await runtime.service.update("alice", task.id, {"title": f"Burst {round_}"})
    events = [Received.parse("task-updates", e) for e in await envelopes(runtime)]
    async with serving(app) as base:
        socket = await open_socket(base, ALICE_TOKEN)
        # six changes committed in one batch, as the embedded relay delivers them: more than
        # the connection's queue holds before its writer runs
        await ConsumerRunner(sessions, clock).process_batch(consumer, events)
        received: list[dict[str, Any]] = []
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append(json.loads(await asyncio.wait_for(socket.recv(), 5)))
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        last = max([0, *(m["position"] for m in received if m["type"] == "change")])
        back = await open_socket(base, ALICE_TOKEN, after=last)
        rest = await changes(back, 6 - last)
        assert [m["position"] for m in rest] == list(range(last + 1, 7))
        assert rest[-1]["task"]["title"] == "Burst 4"
        await back.close()


async def test_a_ticket_is_refused_once_its_personal_token_is_revoked(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> None:
    token, text = await runtime.tokens.create("alice")
    settings = settings_for(database_url)
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    app = Starlette(routes=gateway_routes(settings, runtime.engine, sessions, clock, Hub()))
    async with serving(app) as base:
        live = await open_socket(base, text)
        await live.close()
        async with httpx.AsyncClient() as http:
            issued = await http.post(
                f"{base}/realtime/tickets", headers={"Authorization": f"Bearer {text}"}
            )
        await runtime.tokens.revoke(token.id)
        offered = offering(issued.json()["ticket"])
        async with connect(socket_url(base), subprotocols=offered) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401


async def test_a_position_older_than_the_changes_kept_answers_resync_then_goes_on(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> None:
    settings = settings_for(database_url, TOKENS=TOKENS)
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    hub = Hub()
    app = Starlette(routes=gateway_routes(settings, runtime.engine, sessions, clock, hub))
    task = (await runtime.service.add("alice", NewTask(title="Often changed"))).task
    for round_ in range(199):
        await runtime.service.update("alice", task.id, {"title": f"Change {round_}"})
    events = [Received.parse("task-updates", e) for e in await envelopes(runtime)]
    consumer = realtime_consumer(clock, "UTC", hub.deliver, keep=100)
    await ConsumerRunner(sessions, clock).process_batch(consumer, events)  # positions 1..200
    async with serving(app) as base:
        kept = await open_socket(base, ALICE_TOKEN, after=150)
        assert [m["position"] for m in await changes(kept, 50)] == list(range(151, 201))
        old = await open_socket(base, ALICE_TOKEN, after=5)
        resync = await next_message(old)
        assert (resync["type"], resync["position"]) == ("resync", 200)
        await runtime.service.update("alice", task.id, {"title": "After the resync"})
        [last] = [Received.parse("task-updates", e) for e in (await envelopes(runtime))[-1:]]
        await ConsumerRunner(sessions, clock).process(consumer, last)
        assert (await next_message(old))["position"] == 201
        assert (await next_message(kept))["position"] == 201
        for socket in (kept, old):
            await socket.close()


async def test_the_board_signs_in_with_a_token_into_a_strict_cookie_and_shows_only_its_user(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> None:
    settings = settings_for(database_url, TOKENS=TOKENS)
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    app = Starlette(routes=gateway_routes(settings, runtime.engine, sessions, clock, Hub()))
    await runtime.service.add("alice", NewTask(title="Alice's", tags=["home"]))
    await runtime.service.add("bob", NewTask(title="Bob's"))
    done = (await runtime.service.add("alice", NewTask(title="Done"))).task
    await runtime.service.complete("alice", done.id)
    async with client_for(app) as http:
        page = await http.get("/board")
        assert (
            page.status_code == 200
            and "frame-ancestors 'none'" in page.headers["content-security-policy"]
        )
        assert (await http.get("/board/tasks")).status_code == 401
        foreign = await http.post(
            "/board/session", json={"token": ALICE_TOKEN}, headers={"Origin": "https://evil.test"}
        )
        assert foreign.status_code == 403
        for body in (b"not json", b'{"token": 5}', b'{"token": "' + b"x" * 5000 + b'"}'):
            assert (await http.post("/board/session", content=body)).status_code == 400
        wrong = await http.post(
            "/board/session", json={"token": "dfp_" + "0" * 16 + "_" + "0" * 48}
        )
        assert (
            wrong.status_code == 401
            and "dueflow tokens create" in wrong.json()["error_description"]
        )
        signed = await http.post("/board/session", json={"token": ALICE_TOKEN})
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        listed = (await http.get("/board/tasks")).json()
        assert listed["user"] == "alice" and [t["title"] for t in listed["tasks"]] == ["Alice's"]
        assert listed["tasks"][0]["tags"] == ["home"] and listed["position"] == 0
        ticket = await http.post("/realtime/tickets")  # the session cookie, no bearer token
        assert ticket.status_code == 200 and ticket.json()["ticket"].startswith("dft_")
        assert (await http.post("/board/signout")).status_code == 204
        assert (await http.get("/board/tasks")).status_code == 401
        assert (await http.get("/board/signin?code=dfl_forged")).status_code == 401
        assert (await http.get("/board/assets/../../etc/passwd")).status_code == 404
