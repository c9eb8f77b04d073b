"""The audit worker as a Dapr app — subscriptions, CloudEvent routes, the history API, the cron
route — and the MCP server reading it by service invocation through the fake sidecar."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastmcp import Client
from starlette.applications import Starlette

from domain.adapters.dapr_history import DaprHistory
from domain.adapters.internal_api import TOKEN_HEADER
from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime, UnconfiguredHistory, bootstrap, worker_app
from dueflow.settings import Settings
from mcp_server.server import build_server
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import (
    CLOUDEVENTS,
    PUBSUB,
    client_for,
    cloudevent,
    connect_publisher,
    dapr_mode_runtime,
    deliver,
    deliver_published,
)
from tests.support.database import decoded, envelopes, rows
from tests.support.runtimes import NOW, settings_for
from tests.support.tools import call, history_of, refused

AUDIT_APP = "dueflow-audit"
TOKEN = "internal-token-0123456789"


@pytest.fixture
async def audit_asgi(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> AsyncIterator[Starlette]:
    """`dueflow worker audit` as its host builds it: the internal token, 30 days' retention."""
    settings = settings_for(
        database_url, DAPR_PUBSUB=PUBSUB, INTERNAL_TOKEN=TOKEN, AUDIT_RETENTION_DAYS="30"
    )
    async with worker_app("audit", settings, clock) as app:
        yield app


@pytest.fixture
async def audit(audit_asgi: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(audit_asgi) as client:
        yield client


async def recorded(audit: httpx.AsyncClient, runtime: Runtime) -> int:
    """Deliver every outbox event to the audit app as daprd would; answer how many."""
    found = await envelopes(runtime)
    for envelope in found:
        assert await deliver(audit, envelope) == "SUCCESS"
    return len(found)


async def ask(audit: httpx.AsyncClient, headers: dict[str, str] | None = None, **body: Any) -> Any:
    return await audit.post("/history", json=body, headers={TOKEN_HEADER: TOKEN, **(headers or {})})


async def test_the_audit_app_subscribes_to_task_events_and_reminders(
    audit: httpx.AsyncClient,
) -> None:
    subscribed = (await audit.get("/dapr/subscribe")).json()

    assert [(s["topic"], s["route"], s["deadLetterTopic"]) for s in subscribed] == [
        ("task-events", "/events/task-events", "task-events-dead-letter"),
        ("reminders", "/events/reminders", "reminders-dead-letter"),
    ]


async def test_cloudevents_are_recorded_once_with_who_why_and_details(
    runtime: Runtime, audit: httpx.AsyncClient
) -> None:
    added = await runtime.service.add("alice", NewTask(title="Renew passport"), None, "corr-1")
    [envelope] = await envelopes(runtime)
    reminder = {
        "event_id": str(uuid.uuid4()),
        "event_type": "REMINDER_TRIGGERED",
        "task_id": added.task.id,
        "user_id": "alice",
        "sequence": 1,
        "timestamp": "2026-11-23T10:05:00Z",
        "payload": {
            "task": added.task.snapshot(),
            "reminder": {"reminder_id": "r", "spec": "PT1H", "late": True},
        },
        "metadata": {
            "source": "dueflow.reminders",
            "version": "v1",
            "correlation_id": None,
            "causation_id": envelope["event_id"],
        },
    }

    answers = [
        (
            await audit.post(f"/events/{topic}", content=cloudevent(e, topic), headers=CLOUDEVENTS)
        ).json()["status"]
        for e, topic in [
            (envelope, "task-events"),
            (envelope, "task-events"),
            (reminder, "reminders"),
            (reminder, "reminders"),
        ]
    ]

    assert answers == ["SUCCESS"] * 4
    found = await rows(
        runtime,
        "SELECT event_type, source, correlation_id, causation_id, task_title, details, recorded_at"
        " FROM audit_log ORDER BY id",
    )
    assert [tuple(r)[:5] for r in found] == [
        ("TASK_CREATED", "dueflow.mcp_server", "corr-1", None, "Renew passport"),
        ("REMINDER_TRIGGERED", "dueflow.reminders", None, envelope["event_id"], "Renew passport"),
    ]
    details = [decoded(r[5]) for r in found]
    assert details == [None, {"reminder": {"reminder_id": "r", "spec": "PT1H", "late": True}}]
    # the injected clock stamps the recorded time
    assert str(found[0][6]).startswith("2026-11-23 10:00:00")


async def test_an_event_with_a_bad_timestamp_is_dropped_and_leaves_no_trace(
    runtime: Runtime, audit: httpx.AsyncClient
) -> None:
    await runtime.service.add("alice", NewTask(title="Odd"))
    [envelope] = await envelopes(runtime)
    for timestamp in ("yesterday", "2026-11-23T10:00:00"):
        broken = {**envelope, "event_id": str(uuid.uuid4()), "timestamp": timestamp}
        response = await audit.post(
            "/events/task-events", content=cloudevent(broken, "task-events"), headers=CLOUDEVENTS
        )
        assert response.json() == {"status": "DROP"}
    assert await rows(runtime, "SELECT id FROM audit_log") == []


async def test_the_history_route_answers_only_the_named_users_entries_newest_first(
    runtime: Runtime, audit: httpx.AsyncClient, clock: FixedClock
) -> None:
    task = (await runtime.service.add("alice", NewTask(title="Alice's"))).task
    await runtime.service.complete("alice", task.id)
    await runtime.service.add("bob", NewTask(title="Bob's"))
    await recorded(audit, runtime)

    alices = await ask(audit, user_id="alice")
    bobs = await ask(audit, user_id="bob")
    alice_asks_for_bobs_task = await ask(audit, user_id="mallory", task_id=task.id)

    assert alices.status_code == 200
    assert [(e["event_type"], e["user_id"]) for e in alices.json()["entries"]] == [
        ("TASK_COMPLETED", "alice"),
        ("TASK_CREATED", "alice"),
    ]
    assert alices.json()["next_cursor"] is None
    assert [e["task_title"] for e in bobs.json()["entries"]] == ["Bob's"]
    assert alice_asks_for_bobs_task.json() == {"entries": [], "next_cursor": None}
    entry = alices.json()["entries"][0]
    assert entry["changes"]["status"] == ["open", "completed"]
    assert entry["occurred_at"] == "2026-11-23T10:00:00Z"
    assert entry["source"] == "dueflow.mcp_server"


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({TOKEN_HEADER: "forged-token-0123456789"}, 403)],
    ids=["no-token", "wrong-token"],
)
async def test_the_history_route_refuses_a_caller_without_the_token(
    runtime: Runtime, audit: httpx.AsyncClient, headers: dict[str, str], status: int
) -> None:
    await runtime.service.add("alice", NewTask(title="Private"))
    await recorded(audit, runtime)

    response = await audit.post("/history", json={"user_id": "alice"}, headers=headers)

    assert response.status_code == status
    assert set(response.json()) == {"error"} and TOKEN_HEADER in response.json()["error"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"since": "2026-11-23"}, "user_id"),
        ({"user_id": "alice", "since": "not a date"}, "since"),
        ({"user_id": "alice", "until": 17}, "until"),
        ({"user_id": "alice", "limit": 0}, "limit"),
        ({"user_id": "alice", "limit": "10"}, "limit"),
        ({"user_id": "alice", "cursor": "garbage"}, "cursor"),
        ({"user_id": "alice", "sort": "asc"}, "sort"),
        ({"user_id": "alice", "since": "2026-11-24T00:00Z", "until": "2026-11-23T00:00Z"}, "until"),
        (["alice"], "body"),
    ],
)
async def test_the_history_route_refuses_bad_arguments_naming_the_field(
    audit: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await audit.post("/history", json=body, headers={TOKEN_HEADER: TOKEN})

    assert response.status_code == 400
    answer = response.json()
    assert answer["field"] == field
    assert answer["error"] == f"{field}: {answer['problem']}. Fix: {answer['fix']}."


async def test_the_history_route_pages_with_its_cursor(
    runtime: Runtime, audit: httpx.AsyncClient
) -> None:
    for n in range(3):
        await runtime.service.add("alice", NewTask(title=f"T{n}"))
    await recorded(audit, runtime)

    first = (await ask(audit, user_id="alice", limit=2)).json()
    rest = (await ask(audit, user_id="alice", limit=2, cursor=first["next_cursor"])).json()

    titles = [e["task_title"] for e in first["entries"] + rest["entries"]]
    assert titles == ["T2", "T1", "T0"]
    assert rest["next_cursor"] is None


async def test_the_cron_route_answers_daprs_probe_and_runs_retention(
    runtime: Runtime, audit: httpx.AsyncClient, clock: FixedClock
) -> None:
    clock.advance(-dt.timedelta(days=31))
    await runtime.service.add("alice", NewTask(title="Old"))
    clock.set(NOW)
    await runtime.service.add("alice", NewTask(title="Recent"))
    await recorded(audit, runtime)

    probe = await audit.options("/audit-retention")
    tick = await audit.post("/audit-retention", content=b"")

    assert probe.status_code == 200
    assert tick.status_code == 200
    assert tick.json() == {
        "status": "ran",
        "cutoff": "2026-10-24T10:00:00+00:00",
        "deleted": 1,
        "batches": 1,
    }
    assert [r[0] for r in await rows(runtime, "SELECT task_title FROM audit_log")] == ["Recent"]


async def test_without_retention_or_token_the_audit_app_prunes_nothing_and_hides_history(
    runtime: Runtime, database_url: str, clock: FixedClock
) -> None:
    async with (
        worker_app("audit", settings_for(database_url, DAPR_PUBSUB=PUBSUB), clock) as app,
        client_for(app) as bare,
    ):
        clock.advance(-dt.timedelta(days=400))
        await runtime.service.add("alice", NewTask(title="Ancient"))
        await recorded(bare, runtime)
        tick = await bare.post("/audit-retention")
        history = await ask(bare, user_id="alice")

    assert tick.status_code == 200 and tick.json()["status"].startswith("retention off")
    assert history.status_code == 404
    assert len(await rows(runtime, "SELECT id FROM audit_log")) == 1


# --- the MCP server in Dapr mode, through the fake sidecar -----------------------------------


@pytest.fixture
async def dapr_runtime(
    runtime: Runtime, database_url: str, clock: FixedClock, sidecar: FakeDaprSidecar, tmp_path: Path
) -> AsyncIterator[Runtime]:
    """The API app in Dapr mode: events to the fake sidecar, history from the audit app."""
    async with dapr_mode_runtime(
        sidecar, database_url, tmp_path, clock, INTERNAL_TOKEN=TOKEN, AUDIT_RETENTION_DAYS="30"
    ) as wired:
        yield wired


@pytest.fixture
async def dapr_alice(dapr_runtime: Runtime) -> AsyncIterator[Client]:
    server = build_server(dapr_runtime.service, "alice", history=dapr_runtime.history)
    async with Client(server) as client:
        yield client


async def test_in_dapr_mode_task_history_comes_from_the_audit_app_by_service_invocation(
    dapr_runtime: Runtime,
    dapr_alice: Client,
    sidecar: FakeDaprSidecar,
    audit_asgi: Starlette,
    audit: httpx.AsyncClient,
) -> None:
    sidecar.route_app(AUDIT_APP, audit_asgi)
    task = (await call(dapr_alice, "add_task", title="Through Dapr"))["task"]
    await call(dapr_alice, "update_task", task_id=task["id"], priority="high")
    await dapr_runtime.relay.drain()
    for published in sidecar.published:
        if published.topic == "task-events":
            assert await deliver_published(audit, published) == "SUCCESS"

    entries = await history_of(dapr_alice, task_id=task["id"])

    assert isinstance(dapr_runtime.history, DaprHistory)
    assert dapr_runtime.workers is None  # with Dapr the audit app's cron binding runs it
    assert [(e["event_type"], e["summary"]) for e in entries] == [
        ("TASK_UPDATED", "priority: 'none' -> 'high'; ical_priority: 0 -> 3"),
        ("TASK_CREATED", "created 'Through Dapr'"),
    ]
    [invoked] = sidecar.invoked
    assert (invoked.app_id, invoked.method, invoked.http_verb) == (AUDIT_APP, "history", "POST")
    assert invoked.headers[TOKEN_HEADER] == TOKEN
    assert invoked.json() == {
        "user_id": "alice",
        "task_id": task["id"],
        "since": None,
        "until": None,
        "limit": 50,
        "cursor": None,
    }


async def test_in_dapr_mode_paging_and_refusals_match_the_embedded_history(
    dapr_runtime: Runtime,
    dapr_alice: Client,
    sidecar: FakeDaprSidecar,
    audit_asgi: Starlette,
    audit: httpx.AsyncClient,
) -> None:
    sidecar.route_app(AUDIT_APP, audit_asgi)
    for n in range(3):
        await call(dapr_alice, "add_task", title=f"D{n}")
    await dapr_runtime.relay.drain()
    for published in sidecar.published:
        if published.topic == "task-events":
            await deliver_published(audit, published)

    first = await call(dapr_alice, "task_history", limit=2, since="2026-11-23")
    rest = await call(
        dapr_alice, "task_history", limit=2, since="2026-11-23", cursor=first["next_cursor"]
    )
    foreign = await refused(dapr_alice, "task_history", cursor=first["next_cursor"])

    assert [e["task_title"] for e in first["entries"] + rest["entries"]] == ["D2", "D1", "D0"]
    assert foreign.startswith("cursor: is not a cursor this history issued. Fix:")
    assert sidecar.invoked[0].json()["since"] == "2026-11-22T23:00:00Z"  # Berlin midnight, UTC


async def test_in_dapr_mode_an_unreachable_audit_app_is_a_clear_error(
    dapr_runtime: Runtime, dapr_alice: Client, sidecar: FakeDaprSidecar
) -> None:
    unregistered = await refused(dapr_alice, "task_history")
    await sidecar.stop()
    no_sidecar = await refused(dapr_alice, "task_history")

    for text in (unregistered, no_sidecar):
        assert text.startswith("The history is unavailable: the audit app (dueflow-audit)")
        assert "Fix: check that `dueflow worker audit` runs with its sidecar" in text
    assert "HTTP 500" in unregistered
    assert "sidecar did not answer" in no_sidecar


async def test_in_dapr_mode_a_token_mismatch_or_a_tokenless_audit_app_says_what_to_set(
    dapr_runtime: Runtime,
    dapr_alice: Client,
    sidecar: FakeDaprSidecar,
    database_url: str,
    clock: FixedClock,
) -> None:
    other_token = "another-token-0123456789"
    mismatched_settings = settings_for(database_url, DAPR_PUBSUB=PUBSUB, INTERNAL_TOKEN=other_token)
    async with worker_app("audit", mismatched_settings, clock) as mismatched:
        sidecar.route_app(AUDIT_APP, mismatched)
        wrong = await refused(dapr_alice, "task_history")
    tokenless_settings = settings_for(database_url, DAPR_PUBSUB=PUBSUB)
    async with worker_app("audit", tokenless_settings, clock) as tokenless:
        sidecar.route_app(AUDIT_APP, tokenless)
        unserved = await refused(dapr_alice, "task_history")

    assert "refused this server's internal token" in wrong
    assert "Fix: set the same DUEFLOW_INTERNAL_TOKEN" in wrong
    assert "does not serve its history" in unserved


async def test_in_dapr_mode_without_an_internal_token_task_history_says_what_to_set(
    runtime: Runtime, database_url: str, sidecar: FakeDaprSidecar, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            "DUEFLOW_DATA_DIR": str(tmp_path),
            "DUEFLOW_EVENT_BUS": "dapr",
        }
    )
    async with connect_publisher(sidecar) as publisher:
        wired = await bootstrap(settings, publisher=publisher)
        try:
            async with Client(build_server(wired.service, "alice", history=wired.history)) as c:
                text = await refused(c, "task_history")
        finally:
            await wired.close()

    assert isinstance(wired.history, UnconfiguredHistory)
    assert (
        "Fix: set the same DUEFLOW_INTERNAL_TOKEN on this server and on `dueflow worker audit`"
        in (text)
    )
