"""A worker's Dapr app driven through its endpoints with CloudEvents shaped as Dapr sends them."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime, WorkerSetupError, worker_app
from tests.support.dapr_apps import CLOUDEVENTS, PUBSUB, client_for, cloudevent
from tests.support.database import envelopes, rows
from tests.support.runtimes import settings_for
from tests.support.servers import free_port
from workers.audit import AUDIT_CONSUMER
from workers.consumer import Consumer, ConsumerRunner, Outcome, Received
from workers.dapr_app import build_app


@pytest.fixture
def sessions(runtime: Runtime) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(runtime.engine, expire_on_commit=False)


@pytest.fixture
async def audit_app(
    sessions: async_sessionmaker[AsyncSession], clock: FixedClock
) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app([AUDIT_CONSUMER], ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)
    async with client_for(app) as client:
        yield client


async def test_subscribe_declares_each_audit_topic_with_its_route_and_dead_letter_topic(
    audit_app: httpx.AsyncClient,
) -> None:
    response = await audit_app.get("/dapr/subscribe")

    assert response.status_code == 200
    assert response.json() == [
        {
            "pubsubname": PUBSUB,
            "topic": "task-events",
            "route": "/events/task-events",
            "deadLetterTopic": "task-events-dead-letter",
            "metadata": {"rawPayload": "false"},
        },
        {
            "pubsubname": PUBSUB,
            "topic": "reminders",
            "route": "/events/reminders",
            "deadLetterTopic": "reminders-dead-letter",
            "metadata": {"rawPayload": "false"},
        },
    ]


async def test_a_cloudevent_is_applied_once_even_when_dapr_delivers_it_twice(
    runtime: Runtime, audit_app: httpx.AsyncClient
) -> None:
    await runtime.service.add("alice", NewTask(title="Renew the passport"))
    [envelope] = await envelopes(runtime)

    first = await audit_app.post(
        "/events/task-events", content=cloudevent(envelope), headers=CLOUDEVENTS
    )
    again = await audit_app.post(
        "/events/task-events", content=cloudevent(envelope), headers=CLOUDEVENTS
    )

    assert (first.status_code, first.json()) == (200, {"status": "SUCCESS"})
    assert (again.status_code, again.json()) == (200, {"status": "SUCCESS"})
    audited = await rows(runtime, "SELECT event_id, task_id, event_type FROM audit_log")
    assert [tuple(row) for row in audited] == [
        (envelope["event_id"], envelope["task_id"], "TASK_CREATED")
    ]
    inbox = await rows(runtime, "SELECT consumer, event_id FROM processed_events")
    assert [tuple(row) for row in inbox] == [("audit", envelope["event_id"])]


async def test_data_as_a_json_string_or_as_base64_is_read_like_inline_json(
    runtime: Runtime, audit_app: httpx.AsyncClient
) -> None:
    added = await runtime.service.add("alice", NewTask(title="Book the dentist"))
    await runtime.service.update("alice", added.task.id, {"priority": "high"})
    await runtime.service.complete("alice", added.task.id)
    created, updated, completed = await envelopes(runtime)
    binary = json.loads(cloudevent(completed))
    del binary["data"]
    binary["data_base64"] = base64.b64encode(json.dumps(completed).encode()).decode()
    bodies = [
        cloudevent(created),
        cloudevent(updated, data=json.dumps(updated)),
        json.dumps(binary).encode(),
    ]

    answers = [
        (await audit_app.post("/events/task-events", content=body, headers=CLOUDEVENTS)).json()
        for body in bodies
    ]

    assert answers == [{"status": "SUCCESS"}] * 3
    audited = await rows(runtime, "SELECT event_type FROM audit_log ORDER BY sequence")
    assert [row.event_type for row in audited] == [
        "TASK_CREATED",
        "TASK_UPDATED",
        "TASK_COMPLETED",
    ]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            cloudevent({"event_id": "e-1", "event_type": "TASK_CREATED"}), id="envelope-incomplete"
        ),
        pytest.param(cloudevent({}, data=["not", "an", "object"]), id="data-not-an-object"),
        pytest.param(cloudevent({}, data="{not json"), id="data-string-not-json"),
        pytest.param(b"\x00not json at all", id="body-not-json"),
        pytest.param(
            cloudevent(
                {
                    "event_id": "e-2",
                    "event_type": "TASK_CREATED",
                    "task_id": "t",
                    "user_id": "u",
                    "sequence": 1,
                    "timestamp": "2026-11-23T10:00:00+00:00",
                    "payload": {},
                    "metadata": {"version": "v2"},
                }
            ),
            id="contract-v2",
        ),
    ],
)
async def test_a_malformed_message_is_dropped_and_leaves_no_trace(
    runtime: Runtime, audit_app: httpx.AsyncClient, body: bytes
) -> None:
    response = await audit_app.post("/events/task-events", content=body, headers=CLOUDEVENTS)

    assert (response.status_code, response.json()) == (200, {"status": "DROP"})
    assert await rows(runtime, "SELECT id FROM audit_log") == []
    assert await rows(runtime, "SELECT event_id FROM processed_events") == []


async def test_a_message_on_a_topic_the_app_does_not_subscribe_is_dropped(
    runtime: Runtime, audit_app: httpx.AsyncClient
) -> None:
    await runtime.service.add("alice", NewTask(title="Stray"))
    [envelope] = await envelopes(runtime)

    response = await audit_app.post(
        "/events/task-updates",
        content=cloudevent(envelope, topic="task-updates"),
        headers=CLOUDEVENTS,
    )

    assert response.json() == {"status": "DROP"}


async def _raising(event: Received, session: AsyncSession) -> Outcome:
    raise RuntimeError("the downstream service is down")


async def _dropping(event: Received, session: AsyncSession) -> Outcome:
    return Outcome.DROP


async def _retrying(event: Received, session: AsyncSession) -> Outcome:
    return Outcome.RETRY


@pytest.mark.parametrize(
    ("handler", "status"),
    [
        pytest.param(_raising, "RETRY", id="handler-raises"),
        pytest.param(_retrying, "RETRY", id="handler-answers-retry"),
        pytest.param(_dropping, "DROP", id="handler-answers-drop"),
    ],
)
async def test_a_failing_handler_is_answered_in_dapr_words_and_never_recorded_as_processed(
    runtime: Runtime,
    sessions: async_sessionmaker[AsyncSession],
    clock: FixedClock,
    caplog: pytest.LogCaptureFixture,
    handler: Any,
    status: str,
) -> None:
    await runtime.service.add("alice", NewTask(title="Fragile"))
    [envelope] = await envelopes(runtime)
    consumer = Consumer(name="fragile", handlers={"task-events": handler})
    app = build_app([consumer], ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)

    async with client_for(app) as client:
        response = await client.post(
            "/events/task-events", content=cloudevent(envelope), headers=CLOUDEVENTS
        )

    assert (response.status_code, response.json()) == (200, {"status": status})
    assert await rows(runtime, "SELECT event_id FROM processed_events") == []
    assert any(
        status in record.getMessage() and envelope["event_id"] in record.getMessage()
        for record in caplog.records
        if record.name == "dueflow.dapr_app"
    )


async def test_one_consumer_failing_makes_dapr_redeliver_and_the_other_applies_only_once(
    runtime: Runtime, sessions: async_sessionmaker[AsyncSession], clock: FixedClock
) -> None:
    await runtime.service.add("alice", NewTask(title="Shared"))
    [envelope] = await envelopes(runtime)
    flaky = {"fail": True}

    async def sometimes(event: Received, session: AsyncSession) -> Outcome:
        return Outcome.RETRY if flaky["fail"] else Outcome.SUCCESS

    consumers = [AUDIT_CONSUMER, Consumer(name="flaky", handlers={"task-events": sometimes})]
    app = build_app(consumers, ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)
    async with client_for(app) as client:
        first = await client.post(
            "/events/task-events", content=cloudevent(envelope), headers=CLOUDEVENTS
        )
        flaky["fail"] = False
        second = await client.post(
            "/events/task-events", content=cloudevent(envelope), headers=CLOUDEVENTS
        )

    assert [first.json(), second.json()] == [{"status": "RETRY"}, {"status": "SUCCESS"}]
    assert len(await rows(runtime, "SELECT id FROM audit_log")) == 1
    inbox = await rows(runtime, "SELECT consumer FROM processed_events ORDER BY consumer")
    assert [row.consumer for row in inbox] == ["audit", "flaky"]


async def test_health_answers_alive_and_readiness_answers_when_the_database_does(
    audit_app: httpx.AsyncClient,
) -> None:
    health = await audit_app.get("/healthz")
    ready = await audit_app.get("/readyz")

    assert health.status_code == 200
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def test_readiness_is_503_while_the_database_is_unreachable(clock: FixedClock) -> None:
    # a PostgreSQL URL on a port nothing listens on: refused at once, and no driver threads
    # (a failed aiosqlite connect leaves a worker thread that outlives the test's event loop)
    engine = make_engine(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/dueflow")
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    app = build_app([AUDIT_CONSUMER], ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)
    try:
        async with client_for(app) as client:
            ready = await client.get("/readyz")
            health = await client.get("/healthz")
    finally:
        await engine.dispose()

    assert ready.status_code == 503
    assert health.status_code == 200


async def test_the_worker_host_serves_a_registered_worker_on_a_migrated_database(
    runtime: Runtime, database_url: str
) -> None:
    settings = settings_for(database_url, DAPR_PUBSUB=PUBSUB)
    async with worker_app("audit", settings) as app, client_for(app) as client:
        subscribed = (await client.get("/dapr/subscribe")).json()
        ready = await client.get("/readyz")

    assert [s["topic"] for s in subscribed] == ["task-events", "reminders"]
    assert ready.status_code == 200


async def test_the_worker_host_names_the_known_workers_when_asked_for_an_unknown_one() -> None:
    with pytest.raises(WorkerSetupError, match="use one of: audit"):
        async with worker_app("nope", settings_for("sqlite+aiosqlite:///unused.db")):
            pass
