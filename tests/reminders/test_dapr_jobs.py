"""The reminders worker as a Dapr app, against the fake sidecar: one Dapr job per reminder
(ScheduleJob / DeleteJob requests), the /job/<name> callback and the cron sweep. Both databases.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import httpx
import pytest

from domain.adapters.dapr_jobs import DaprJobs
from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime, WorkerAdapters, worker_app
from tests.fakes.dapr_sidecar import FakeDaprSidecar, JobRequest
from tests.support.dapr_apps import PUBSUB, deliver
from tests.support.database import envelopes, rows
from tests.support.reminders import deliver_all, task_events, triggered
from tests.support.runtimes import settings_for
from workers.reminders import SWEEP_BINDING

NOON = "2026-11-23T12:00:00Z"


@pytest.fixture
async def jobs(sidecar: FakeDaprSidecar) -> AsyncIterator[DaprJobs]:
    async with DaprJobs(sidecar.grpc_address, sidecar.http_endpoint, timeout=5.0) as scheduler:
        yield scheduler


@pytest.fixture
async def app(
    runtime: Runtime, database_url: str, clock: FixedClock, jobs: DaprJobs
) -> AsyncIterator[httpx.AsyncClient]:
    settings = settings_for(database_url, DAPR_PUBSUB=PUBSUB)
    async with worker_app("reminders", settings, clock, WorkerAdapters(jobs=jobs)) as worker:
        transport = httpx.ASGITransport(app=worker)
        async with httpx.AsyncClient(transport=transport, base_url="http://reminders") as client:
            yield client


async def test_each_reminder_becomes_a_dapr_job_due_at_its_utc_moment(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add(
        "alice",
        NewTask(title="Call Bob", due=NOON, reminders=["PT15M", "2026-11-23T11:30:00+01:00"]),
    )
    await deliver_all(runtime, app, added.task.id)

    scheduled = sorted(sidecar.job_requests, key=lambda r: r.due_time)
    assert [(r.rpc, r.due_time, r.overwrite) for r in scheduled] == [
        ("ScheduleJob", "2026-11-23T10:30:00Z", True),
        ("ScheduleJob", "2026-11-23T11:45:00Z", True),
    ]
    for request in scheduled:
        assert request.name.startswith(f"reminder-{added.task.id}-")
        assert request.data == {
            "reminder_id": request.name,
            "task_id": added.task.id,
            "user_id": "alice",
            "fire_at": request.due_time,
        }
    stored = await rows(runtime, "SELECT id FROM reminder_schedule ORDER BY fire_at")
    assert [str(r[0]) for r in stored] == [r.name for r in scheduled]


async def test_a_redelivered_event_schedules_nothing_new(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    await deliver_all(runtime, app, added.task.id)
    assert len(sidecar.job_requests) == 1


async def test_re_dating_overwrites_the_job_and_completing_deletes_it(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    task_id = added.task.id
    await runtime.service.update("alice", task_id, {"due": "2026-11-23T15:00:00Z"})
    await runtime.service.complete("alice", task_id)
    await deliver_all(runtime, app, task_id)

    name = sidecar.job_requests[0].name
    assert sidecar.job_requests == [
        sidecar.job_requests[0],
        JobRequest("ScheduleJob", name, "2026-11-23T14:45:00Z", True, sidecar.job_requests[1].data),
        JobRequest("DeleteJob", name),
    ]
    assert sidecar.jobs == {}


async def test_the_job_callback_fires_the_reminder_once(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    [job] = sidecar.jobs

    clock.set(dt.datetime(2026, 11, 23, 11, 45, tzinfo=dt.UTC))
    first, second = [(await app.post(f"/job/{job}", json={})).json() for _ in range(2)]
    assert first == {"status": "fired", "job": job}
    assert second == {"status": "ignored", "job": job}
    assert await triggered(runtime) == [added.task.id]


async def test_a_job_for_a_task_completed_meanwhile_is_dropped_as_stale(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    [job] = sidecar.jobs
    await runtime.service.complete("alice", added.task.id)  # the worker has not seen it yet

    clock.set(dt.datetime(2026, 11, 23, 11, 45, tzinfo=dt.UTC))
    assert (await app.post(f"/job/{job}", json={})).json()["status"] == "stale"
    assert await triggered(runtime) == []


async def test_the_cron_sweep_fires_reminders_whose_jobs_were_lost_once(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar, clock: FixedClock
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    sidecar.jobs.clear()  # the scheduler lost them

    assert (await app.options(f"/{SWEEP_BINDING}")).status_code == 200
    clock.set(dt.datetime(2026, 11, 23, 12, 30, tzinfo=dt.UTC))
    answers = await asyncio.gather(*(app.post(f"/{SWEEP_BINDING}", json={}) for _ in range(3)))
    assert all(a.status_code == 200 for a in answers)
    assert sum(len(a.json()["fired"]) for a in answers) == 1
    assert await triggered(runtime) == [added.task.id]
    late = await rows(runtime, "SELECT late FROM reminder_schedule")
    assert bool(late[0][0]) is True


async def test_a_sidecar_that_refuses_the_job_makes_the_delivery_retry(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    [created] = await task_events(runtime, added.task.id)
    sidecar.refuse = True
    assert await deliver(app, created, "task-events") == "RETRY"
    assert await rows(runtime, "SELECT id FROM reminder_schedule") == []  # rolled back
    sidecar.refuse = False
    assert await deliver(app, created, "task-events") == "SUCCESS"
    assert len(sidecar.jobs) == 1


async def test_a_snooze_from_the_api_becomes_a_job(
    runtime: Runtime, app: httpx.AsyncClient, sidecar: FakeDaprSidecar
) -> None:
    added = await runtime.service.add("alice", NewTask(title="x", due=NOON, reminders=["PT15M"]))
    await deliver_all(runtime, app, added.task.id)
    await runtime.reminders.snooze("alice", added.task.id, None, "PT3H")
    for envelope in await envelopes(
        runtime, "event_type LIKE 'REMINDER%' AND task_id = :t", t=added.task.id
    ):
        assert await deliver(app, envelope, "reminders") == "SUCCESS"
    assert sorted(j.due_time for j in sidecar.jobs.values()) == ["2026-11-23T13:00:00Z"]
