"""`dueflow worker reminders` as production runs it: its own process, configured only through
DUEFLOW_* settings, reaching a sidecar at addresses that are not the Dapr SDK's defaults."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx

from domain.service import NewTask
from dueflow.bootstrap import Runtime
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import CLOUDEVENTS, cloudevent
from tests.support.database import envelopes
from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command, free_port
from tests.support.waiting import eventually

PUBSUB = "tasks-pubsub"  # not the default "pubsub": the setting must be read
STATESTORE = "reminder-state"  # not the default "statestore"
SDK_DEFAULT_GRPC = "127.0.0.1:50001"


async def ready(base: str, worker: subprocess.Popen[str]) -> None:
    """Wait until the worker answers its health check; fail if it exits first."""
    async with httpx.AsyncClient(base_url=base) as client:

        async def healthy() -> bool:
            assert worker.poll() is None, "the worker exited while starting"
            try:
                return (await client.get("/healthz")).status_code == 200
            except httpx.TransportError:
                return False

        await eventually(healthy, timeout=STARTUP_SECONDS, what="the worker to answer /healthz")


async def test_the_reminders_worker_schedules_through_the_configured_sidecar_address(
    runtime: Runtime, database_url: str, sidecar: FakeDaprSidecar, tmp_path: Path
) -> None:
    assert sidecar.grpc_address != SDK_DEFAULT_GRPC
    added = await runtime.service.add(
        "alice", NewTask(title="Renew", due="2030-01-01T12:00:00Z", reminders=["PT15M"])
    )
    [envelope] = await envelopes(runtime, "task_id = :t", t=added.task.id)
    port = free_port()
    env = child_env(
        tmp_path,
        DUEFLOW_DATABASE_URL=database_url,
        DUEFLOW_EVENT_BUS="dapr",
        DUEFLOW_DAPR_PUBSUB=PUBSUB,
        DUEFLOW_DAPR_STATESTORE=STATESTORE,
        DUEFLOW_DAPR_GRPC_ADDRESS=sidecar.grpc_address,
        DUEFLOW_DAPR_HTTP_ENDPOINT=sidecar.http_endpoint,
    )
    command = dueflow_command("worker", "reminders", "--port", str(port))
    with subprocess.Popen(
        command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True
    ) as worker:
        try:
            base = f"http://127.0.0.1:{port}"
            await ready(base, worker)
            async with httpx.AsyncClient(base_url=base) as client:
                subscribed = (await client.get("/dapr/subscribe")).json()
                answer = await client.post(
                    "/events/task-events",
                    content=cloudevent(envelope, "task-events", pubsubname=PUBSUB),
                    headers=CLOUDEVENTS,
                )
        finally:
            worker.terminate()
            worker.wait(timeout=STARTUP_SECONDS)

    assert {s["pubsubname"] for s in subscribed} == {PUBSUB}
    assert answer.json() == {"status": "SUCCESS"}
    [job] = sidecar.jobs.values()
    assert job.due_time == "2030-01-01T11:45:00Z"
    assert len(sidecar.state_store(STATESTORE).entries) >= 1  # the schedule, in the named store
