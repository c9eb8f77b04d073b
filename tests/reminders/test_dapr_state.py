"""The reminder schedule in the Dapr state store, end to end against the fake sidecar: the
reminders app (`dueflow worker reminders`) and the API app's reminder tools in Dapr mode, with
no row in the SQL table. Both databases (they still hold the tasks and the outbox)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastmcp import Client
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.dapr_jobs import DaprJobs
from domain.adapters.dapr_state_reminders import DaprStateReminders
from domain.adapters.unit_of_work import SqlUnitOfWork, shared_repository
from domain.clock import FixedClock
from domain.reminder_service import ReminderService, reconcile
from domain.service import NewTask
from dueflow.bootstrap import Runtime, WorkerAdapters, worker_app
from mcp_server.server import build_server
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import PUBSUB, dapr_mode_runtime, deliver
from tests.support.database import rows
from tests.support.reminders import deliver_all, task_events, triggered
from tests.support.runtimes import NOW, settings_for
from tests.support.tools import call
from workers.reminders import SWEEP_BINDING

STORE = "statestore"
NOON = "2026-11-23T12:00:00Z"
AT_1145 = dt.datetime(2026, 11, 23, 11, 45, tzinfo=dt.UTC)


@pytest.fixture
async def state(sidecar: FakeDaprSidecar) -> AsyncIterator[DaprStateReminders]:
    async with DaprStateReminders(
        STORE, sidecar.grpc_address, sidecar.http_endpoint, timeout=5.0
    ) as store:
        yield store


@pytest.fixture
async def app(
    runtime: Runtime,
    database_url: str,
    clock: FixedClock,
    sidecar: FakeDaprSidecar,
    state: DaprStateReminders,
) -> AsyncIterator[httpx.AsyncClient]:
    """`dueflow worker reminders` as serve_worker builds it: jobs and the state store."""
    async with (
        DaprJobs(sidecar.grpc_address, sidecar.http_endpoint, timeout=5.0) as jobs,
        worker_app(
            "reminders",
            settings_for(database_url, DAPR_PUBSUB=PUBSUB),
            clock,
            WorkerAdapters(jobs=jobs, reminder_store=shared_repository(state)),
        ) as worker,
    ):
        transport = httpx.ASGITransport(app=worker)
        async with httpx.AsyncClient(transport=transport, base_url="http://reminders") as client:
            yield client


def entries(sidecar: FakeDaprSidecar) -> dict[str, dict[str, object]]:
    return sidecar.state_store(STORE).values()


async def test_a_created_task_schedules_its_job_and_its_state_entry_and_no_row(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)

    [job] = sidecar.jobs.values()
    assert job.due_time == "2026-11-23T11:45:00Z"
    assert entries(sidecar) == {
        job.name: {
            "id": job.name,
            "user_id": "alice",
            "task_id": added.task.id,
            "spec": "PT15M",
            "fire_at": "2026-11-23T11:45:00Z",
            "fire_key": "20261123T114500.000000Z",
            "task_version": 1,
            "state": "pending",
            "fired_at": None,
            "late": False,
            "reason": None,
            "updated_at": "2026-11-23T10:00:00Z",
        }
    }
    saves = [r for r in sidecar.state_requests if r.rpc == "SaveState"]
    assert {r.metadata.get("contentType") for r in saves} == {"application/json"}
    assert await rows(runtime, "SELECT id FROM reminder_schedule") == []


async def test_the_job_callback_fires_once_from_the_state_store(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    [job] = sidecar.jobs

    clock.set(AT_1145)
    answers = await asyncio.gather(*(app.post(f"/job/{job}", json={}) for _ in range(3)))
    assert sorted(a.json()["status"] for a in answers) == ["fired", "ignored", "ignored"]
    assert (await app.post(f"/job/{job}", json={})).json()["status"] == "ignored"
    assert await triggered(runtime) == [added.task.id]
    assert entries(sidecar)[job]["state"] == "fired"
    fired_saves = [r for r in sidecar.state_requests if r.rpc == "SaveState" and r.first_write]
    assert fired_saves and all(r.etag for r in fired_saves)  # the guard: etag + first-write


async def test_the_sweep_fires_a_reminder_whose_job_was_lost_once_and_late(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    sidecar.jobs.clear()

    clock.set(dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC))
    answers = await asyncio.gather(*(app.post(f"/{SWEEP_BINDING}", json={}) for _ in range(3)))
    assert sum(len(a.json()["fired"]) for a in answers) == 1
    assert await triggered(runtime) == [added.task.id]
    [entry] = entries(sidecar).values()
    assert (entry["state"], entry["late"]) == ("fired", True)
    sweeps = [
        r.query
        for r in sidecar.state_requests
        if r.rpc == "QueryStateAlpha1" and r.query["filter"] == {"EQ": {"state": "pending"}}
    ]
    assert len(sweeps) == 3  # no range filter: the cut-off at now is the adapter's
    assert sweeps[0]["sort"][0] == {"key": "fire_key", "order": "ASC"}


async def test_a_trigger_for_a_task_completed_meanwhile_is_dropped_as_stale(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    [job] = sidecar.jobs
    await runtime.service.complete("alice", added.task.id)

    clock.set(AT_1145)
    assert (await app.post(f"/job/{job}", json={})).json()["status"] == "stale"
    assert await triggered(runtime) == []
    assert entries(sidecar)[job]["reason"] == "the task is completed"


async def test_a_delivery_retried_after_a_refused_job_still_schedules_the_job(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    [created] = await task_events(runtime, added.task.id)
    sidecar.refuse_jobs = True  # the state entry is written, the job is not
    assert await deliver(app, created, "task-events") == "RETRY"
    assert sidecar.jobs == {} and len(entries(sidecar)) == 1
    sidecar.refuse_jobs = False
    assert await deliver(app, created, "task-events") == "SUCCESS"
    assert len(sidecar.jobs) == 1 and list(sidecar.jobs) == list(entries(sidecar))


async def test_a_failed_commit_puts_fired_reminders_back_to_pending(
    runtime: Runtime, state: DaprStateReminders, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    async with SqlUnitOfWork(sessions, reminder_store=shared_repository(state)) as uow:
        await reconcile(uow, added.task.snapshot(), NOW, NOW)
        await uow.commit()

    class FailingCommit(SqlUnitOfWork):
        async def commit(self) -> None:
            raise ConnectionError("the database went away")

    service = ReminderService(
        lambda: FailingCommit(sessions, reminder_store=shared_repository(state)), clock
    )
    clock.set(AT_1145)
    with pytest.raises(ConnectionError):
        await service.fire_due()
    [entry] = entries(sidecar).values()
    assert entry["state"] == "pending"
    assert await triggered(runtime) == []


# --- the API app in Dapr mode -------------------------------------------------------------------


@pytest.fixture
async def dapr_runtime(
    runtime: Runtime, database_url: str, clock: FixedClock, sidecar: FakeDaprSidecar, tmp_path: Path
) -> AsyncIterator[Runtime]:
    async with dapr_mode_runtime(
        sidecar, database_url, tmp_path, clock, DAPR_STATESTORE=STORE
    ) as wired:
        yield wired


@pytest.fixture
async def dapr_alice(dapr_runtime: Runtime) -> AsyncIterator[Client]:
    server = build_server(dapr_runtime.service, "alice", reminders=dapr_runtime.reminders)
    async with Client(server) as client:
        yield client


async def test_in_dapr_mode_the_reminder_tools_read_and_write_the_state_store(
    dapr_runtime: Runtime,
    dapr_alice: Client,
    app: httpx.AsyncClient,
    sidecar: FakeDaprSidecar,
) -> None:
    task = (await call(dapr_alice, "add_task", title="Call Bob", due=NOON, reminders=["PT15M"]))[
        "task"
    ]
    await deliver_all(dapr_runtime, app, task["id"])  # the reminders app plans it

    listed = await call(dapr_alice, "list_reminders")
    assert [(r["task_id"], r["fires_at"]) for r in listed["reminders"]] == [
        (task["id"], "2026-11-23T11:45:00Z")
    ]
    snoozed = await call(dapr_alice, "snooze_reminder", task_id=task["id"], until=NOON)
    assert [r["state"] for r in snoozed["silenced"]] == ["dismissed"]
    stored = entries(sidecar)
    assert stored[snoozed["snoozed"]["reminder_id"]]["state"] == "pending"
    assert stored[snoozed["silenced"][0]["reminder_id"]]["state"] == "dismissed"

    dismissed = await call(dapr_alice, "dismiss_reminder", task_id=task["id"])
    assert [r["spec"] for r in dismissed["dismissed"]] == ["snooze"]
    assert {e["state"] for e in entries(sidecar).values()} == {"dismissed"}
    assert (await call(dapr_alice, "list_reminders"))["reminders"] == []
    assert await rows(dapr_runtime, "SELECT id FROM reminder_schedule") == []


async def test_in_dapr_mode_the_reminder_service_uses_the_named_state_store(
    dapr_runtime: Runtime, sidecar: FakeDaprSidecar
) -> None:
    added = await dapr_runtime.service.add("alice", NewTask(title="x", due=NOON))
    await dapr_runtime.reminders.snooze("alice", added.task.id, None, "PT1H")
    assert list(sidecar.states) == [STORE]
    [entry] = entries(sidecar).values()
    assert (entry["spec"], entry["state"]) == ("snooze", "pending")
