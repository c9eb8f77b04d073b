"""The relay publishing through DaprPublisher to a fake sidecar: every request, faults, recovery."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.dapr_publisher import DaprPublisher
from domain.adapters.outbox import OutboxRelay
from domain.adapters.schema import upgrade
from domain.adapters.sql import make_engine
from domain.clock import FixedClock
from domain.ports import OutboundMessage, PublishFailed
from domain.service import NewTask
from dueflow.bootstrap import Runtime, bootstrap
from dueflow.settings import Settings
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import PUBSUB, connect_publisher, deliver_published
from tests.support.database import decoded, rows
from workers.audit import AUDIT_CONSUMER
from workers.consumer import ConsumerRunner
from workers.dapr_app import build_app

LATER = dt.timedelta(hours=2)  # past any backoff the relay schedules
# the health timeout: a probe of the fake sidecar answers well within it on a loaded machine
PROBE_SECONDS = 1.0


async def test_each_committed_event_is_published_to_both_task_topics_with_the_contract_metadata(
    runtime: Runtime, clock: FixedClock, sidecar: FakeDaprSidecar, publisher: DaprPublisher
) -> None:
    added = await runtime.service.add("alice", NewTask(title="Water the plants", tags=["home"]))
    task_id = added.task.id
    relay = OutboxRelay(runtime.engine, publisher, clock)

    assert await relay.drain() == 1

    [(event_id, payload, published_at)] = await rows(
        runtime, "SELECT event_id, payload, published_at FROM outbox"
    )
    envelope = decoded(payload)
    assert published_at is not None
    assert [p.topic for p in sidecar.published] == ["task-events", "task-updates"]
    for request in sidecar.published:
        assert request.pubsub_name == PUBSUB
        assert request.data_content_type == "application/json"
        assert request.json() == envelope
        assert request.metadata == {
            "partitionKey": task_id,
            "cloudevent.id": event_id,
            "cloudevent.type": "dueflow.task_created.v1",
        }
    assert envelope["event_type"] == "TASK_CREATED"
    assert envelope["task_id"] == task_id
    assert envelope["metadata"]["version"] == "v1"


async def test_a_refusing_sidecar_leaves_the_rows_in_the_outbox_and_they_go_out_in_order_later(
    runtime: Runtime, clock: FixedClock, sidecar: FakeDaprSidecar, publisher: DaprPublisher
) -> None:
    task_ids = []
    for n in range(3):
        added = await runtime.service.add("alice", NewTask(title=f"task {n}"))
        task_ids.append(added.task.id)
        await runtime.service.update("alice", added.task.id, {"priority": "high"})
        await runtime.service.complete("alice", added.task.id)
    relay = OutboxRelay(runtime.engine, publisher, clock)
    sidecar.refuse = True

    assert await relay.drain() == 0

    kept = await rows(
        runtime, "SELECT attempts, last_error FROM outbox WHERE published_at IS NULL ORDER BY id"
    )
    assert len(kept) == 9
    first_of_each_task = [row for row in kept if row.attempts > 0]
    assert len(first_of_each_task) == 3  # the later events of a task wait behind its first
    assert all("UNAVAILABLE" in str(row.last_error) for row in first_of_each_task)
    assert sidecar.published == []

    sidecar.refuse = False
    clock.advance(LATER)
    assert await relay.drain() == 9

    assert await rows(runtime, "SELECT id FROM outbox WHERE published_at IS NULL") == []
    for task_id in task_ids:
        assert sidecar.topics_for(task_id) == [
            ("task-events", "dueflow.task_created.v1"),
            ("task-updates", "dueflow.task_created.v1"),
            ("task-events", "dueflow.task_updated.v1"),
            ("task-updates", "dueflow.task_updated.v1"),
            ("task-events", "dueflow.task_completed.v1"),
            ("task-updates", "dueflow.task_completed.v1"),
        ]
        sequences = [
            p.json()["sequence"]
            for p in sidecar.published
            if p.topic == "task-events" and p.metadata["partitionKey"] == task_id
        ]
        assert sequences == sorted(sequences)


async def test_a_sidecar_that_fails_a_few_requests_costs_retries_not_events(
    runtime: Runtime, clock: FixedClock, sidecar: FakeDaprSidecar, publisher: DaprPublisher
) -> None:
    for n in range(5):
        await runtime.service.add("alice", NewTask(title=f"task {n}"))
    relay = OutboxRelay(runtime.engine, publisher, clock)
    sidecar.fail_next(3)

    delivered = await relay.drain()
    clock.advance(LATER)
    delivered += await relay.drain()

    assert delivered == 5
    assert sidecar.refused == 3
    assert await rows(runtime, "SELECT id FROM outbox WHERE published_at IS NULL") == []
    event_ids = {p.metadata["cloudevent.id"] for p in sidecar.published}
    [(count,)] = await rows(runtime, "SELECT count(*) FROM outbox")
    assert len(event_ids) == count == 5


async def test_start_up_without_a_sidecar_is_bounded_and_logged_and_delivers_once_it_is_up(
    runtime: Runtime,
    clock: FixedClock,
    absent_sidecar: FakeDaprSidecar,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="dueflow.dapr")
    # only an unbounded wait for the absent sidecar trips this guard: it is ten health timeouts
    async with asyncio.timeout(10 * PROBE_SECONDS) as start_up:
        async with connect_publisher(absent_sidecar, PROBE_SECONDS) as publisher:
            start_up.reschedule(None)
            assert not publisher.connected
            [line] = [r for r in caplog.records if r.name == "dueflow.dapr"]
            assert line.levelno == logging.WARNING
            assert absent_sidecar.http_endpoint in line.getMessage()
            assert "did not answer" in line.getMessage()

            await runtime.service.add("alice", NewTask(title="Call the plumber"))
            relay = OutboxRelay(runtime.engine, publisher, clock)
            assert await relay.drain() == 0
            [(attempts, last_error)] = await rows(
                runtime, "SELECT attempts, last_error FROM outbox WHERE published_at IS NULL"
            )
            assert attempts == 1
            assert "not reachable" in str(last_error)

            await absent_sidecar.start()
            clock.advance(LATER)
            assert await relay.drain() == 1

            assert publisher.connected
            assert [p.topic for p in absent_sidecar.published] == ["task-events", "task-updates"]
            assert await rows(runtime, "SELECT id FROM outbox WHERE published_at IS NULL") == []


async def test_a_sidecar_that_goes_away_and_comes_back_is_reconnected_to(
    sidecar: FakeDaprSidecar, publisher: DaprPublisher
) -> None:
    message = OutboundMessage("task-events", "e-1", "TASK_CREATED", "t-1", {"n": 1})
    await publisher.publish([message])
    await sidecar.stop()

    with pytest.raises(PublishFailed, match="task-events"):
        await publisher.publish([message])
    with pytest.raises(PublishFailed, match="not reachable"):
        await publisher.publish([message])

    await sidecar.start()
    await publisher.publish([message])
    assert [p.json() for p in sidecar.published] == [{"n": 1}, {"n": 1}]


async def test_the_sdk_start_up_check_does_not_print_to_stdout_or_keep_its_settings(
    sidecar: FakeDaprSidecar, capsys: pytest.CaptureFixture[str]
) -> None:
    from dapr.conf import settings as dapr_settings

    before = dict(vars(dapr_settings))
    async with connect_publisher(sidecar) as publisher:
        assert publisher.connected
    assert dict(vars(dapr_settings)) == before
    assert capsys.readouterr().out == ""
    assert sidecar.health_probes >= 2  # ours, then the SDK's own


async def test_a_sidecar_whose_health_fails_is_not_used_until_it_reports_healthy(
    sidecar: FakeDaprSidecar,
) -> None:
    sidecar.healthy = False
    message = OutboundMessage("task-events", "e-1", "TASK_CREATED", "t-1", {"n": 1})
    async with connect_publisher(sidecar, PROBE_SECONDS) as publisher:
        assert not publisher.connected
        with pytest.raises(PublishFailed, match="HTTP 500"):
            await publisher.publish([message])
        assert sidecar.published == []

        sidecar.healthy = True
        await publisher.publish([message])

    assert [p.topic for p in sidecar.published] == ["task-events"]


async def test_bootstrap_with_the_dapr_bus_publishes_through_the_configured_sidecar(
    database_url: str, clock: FixedClock, sidecar: FakeDaprSidecar, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        engine = make_engine(database_url)
        await upgrade(engine)
        await engine.dispose()
    settings = Settings.from_env(
        {
            "DUEFLOW_DATABASE_URL": database_url,
            "DUEFLOW_DATA_DIR": str(tmp_path),
            "DUEFLOW_EVENT_BUS": "dapr",
            "DUEFLOW_DAPR_PUBSUB": PUBSUB,
            "DUEFLOW_DAPR_GRPC_ADDRESS": sidecar.grpc_address,
            "DUEFLOW_DAPR_HTTP_ENDPOINT": sidecar.http_endpoint,
            "DUEFLOW_DAPR_HEALTH_TIMEOUT": "5",
        }
    )
    runtime = await bootstrap(settings, clock=clock)
    try:
        assert isinstance(runtime.publisher, DaprPublisher)
        assert runtime.publisher.connected
        added = await runtime.service.add("alice", NewTask(title="Through the sidecar"))
        assert await runtime.relay.drain() == 1
    finally:
        await runtime.close()

    assert sidecar.topics_for(added.task.id) == [
        ("task-events", "dueflow.task_created.v1"),
        ("task-updates", "dueflow.task_created.v1"),
    ]


async def test_what_the_publisher_sends_is_what_the_worker_app_applies(
    runtime: Runtime, clock: FixedClock, sidecar: FakeDaprSidecar, publisher: DaprPublisher
) -> None:
    added = await runtime.service.add("alice", NewTask(title="Round trip"))
    await runtime.service.complete("alice", added.task.id)
    await OutboxRelay(runtime.engine, publisher, clock).drain()
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    app = build_app([AUDIT_CONSUMER], ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)

    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        for request in sidecar.published:
            if request.topic == "task-events":
                answers.append(await deliver_published(client, request))

    assert answers == ["SUCCESS", "SUCCESS"]
    audited = await rows(runtime, "SELECT event_type FROM audit_log ORDER BY sequence")
    assert [row.event_type for row in audited] == ["TASK_CREATED", "TASK_COMPLETED"]


@pytest.mark.timeout(240)
async def test_a_thousand_tasks_added_while_the_sidecar_is_absent_all_reach_the_worker_once(
    runtime: Runtime, clock: FixedClock, absent_sidecar: FakeDaprSidecar
) -> None:
    async with connect_publisher(absent_sidecar, PROBE_SECONDS) as publisher:
        relay = OutboxRelay(runtime.engine, publisher, clock)
        for n in range(1000):
            await runtime.service.add("alice", NewTask(title=f"task {n}"))
        assert await relay.drain() == 0
        assert (await relay.backlog()).size == 1000

        await absent_sidecar.start()
        clock.advance(LATER)
        assert await relay.drain() == 1000
    assert (await relay.backlog()).size == 0
    events = [p for p in absent_sidecar.published if p.topic == "task-events"]
    assert len({p.metadata["cloudevent.id"] for p in events}) == 1000

    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    app = build_app([AUDIT_CONSUMER], ConsumerRunner(sessions, clock), PUBSUB, sessions=sessions)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as client:
        # Kafka delivers at least once: every message arrives, then a fifth of them again
        for attempt, batch in enumerate((events, events[::5])):
            for request in batch:
                assert await deliver_published(client, request) == "SUCCESS", attempt
    assert (await rows(runtime, "SELECT count(*) AS n FROM audit_log"))[0].n == 1000
    assert (await rows(runtime, "SELECT count(DISTINCT event_id) AS n FROM audit_log"))[0].n == 1000
