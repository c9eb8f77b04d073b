"""The distributed path end to end, as separate processes: the API and every worker started with
the chart's own arguments and environment (values.yaml), each pointed at its own sidecar address,
behind a fake mesh that delivers what is published to the subscribed apps as daprd would,
schedules and fires jobs, and forwards service invocation. On PostgreSQL, as deployed."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastmcp import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.deploy.chart import app_id, container, render
from tests.deploy.mesh import Delivery, FakeMesh, RetryPolicy
from tests.deploy.test_chart_contracts import SECRET_STANDINS, dueflow_deployments
from tests.fakes.dapr_sidecar import Published
from tests.support.database import truncate
from tests.support.otlp import Collector, ReceivedSpan
from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command, free_port, serving
from tests.support.waiting import eventually

# one deployment for the module: starting five processes is the expensive part
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.timeout(180),  # the first test also starts the five processes
]
TOKEN = SECRET_STANDINS["DUEFLOW_TOKENS"].split("=")[0]


@dataclass
class Cluster:
    """The processes of one deployment, by role, behind `mesh`."""

    mesh: FakeMesh
    database_url: str
    home: Path
    webhook_url: str
    collector_url: str
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    deployments: dict[str, Any] = field(default_factory=dict)

    def start(self, role: str) -> None:
        deployment = self.deployments[role]
        app = app_id(deployment)
        sidecar = self.mesh.sidecar(app)
        env = child_env(self.home)
        for entry in container(deployment)["env"]:
            env[entry["name"]] = (
                entry["value"] if "value" in entry else SECRET_STANDINS[entry["name"]]
            )
        env.update(
            DUEFLOW_DATABASE_URL=self.database_url,
            DUEFLOW_DAPR_GRPC_ADDRESS=sidecar.grpc_address,
            DUEFLOW_DAPR_HTTP_ENDPOINT=sidecar.http_endpoint,
            DUEFLOW_OTLP_ENDPOINT=self.collector_url,
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        if role == "notifications":
            env.update(DUEFLOW_WEBHOOKS=f"alice={self.webhook_url}")
            env.update(DUEFLOW_WEBHOOK_ALLOW_PRIVATE="true")
        args = list(container(deployment)["args"])
        port = self.ports.setdefault(role, free_port())
        args[args.index("--port") + 1] = str(port)
        args[args.index("--host") + 1] = "127.0.0.1"
        log = (self.home / f"{role}.log").open("ab")
        self.processes[role] = subprocess.Popen(
            dueflow_command(*args),
            env=env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()

    async def ready(self, role: str) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.ports[role]}") as client:

            async def answers() -> bool:
                if self.processes[role].poll() is not None:
                    raise AssertionError((self.home / f"{role}.log").read_text()[-3000:])
                try:
                    headers = {"host": "localhost"}
                    return (await client.get("/readyz", headers=headers)).status_code == 200
                except httpx.TransportError:
                    return False

            await eventually(answers, timeout=STARTUP_SECONDS * 2, what=f"{role} to be ready")
        self.mesh.listening(app_id(self.deployments[role]), self.ports[role])

    def stop(self, role: str) -> None:
        process = self.processes.pop(role)
        process.kill()
        process.wait(timeout=STARTUP_SECONDS)


@pytest.fixture(scope="module")
def webhooks() -> list[dict[str, Any]]:
    return []


@pytest.fixture(scope="module")
def collector() -> Collector:
    """The spans every process of the deployment exports."""
    return Collector()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(
    postgres_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    webhooks: list[dict[str, Any]],
    collector: Collector,
) -> AsyncIterator[Cluster]:
    await truncate(postgres_url)
    tmp_path = tmp_path_factory.mktemp("mesh")

    async def receive(request: Request) -> Response:
        webhooks.append(await request.json())
        return Response(status_code=204)

    deployments = dueflow_deployments(render("values.yaml"))
    mesh = FakeMesh([app_id(d) for d in deployments.values()], RetryPolicy(1.5, 8))
    await mesh.start()
    async with (
        serving(Starlette(routes=[Route("/hook", receive, methods=["POST"])])) as hook,
        serving(collector.app()) as traces,
    ):
        cluster = Cluster(
            mesh, postgres_url, tmp_path, f"{hook}/hook", traces, deployments=deployments
        )
        try:
            for role in deployments:
                cluster.start(role)
            await asyncio.gather(*(cluster.ready(role) for role in deployments))
            yield cluster
        finally:
            for role in list(cluster.processes):
                cluster.stop(role)
            await mesh.stop()


@contextlib.asynccontextmanager
async def mcp(cluster: Cluster) -> AsyncIterator[Client[Any]]:
    async with Client(f"http://127.0.0.1:{cluster.ports['api']}/mcp", auth=TOKEN) as client:
        yield client


def soon(seconds: float) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def to_recurrence(delivery: Delivery) -> bool:
    return delivery.app_id == "dueflow-recurrence" and delivery.topic == "task-events"


async def call(client: Client[Any], tool: str, **arguments: Any) -> Any:
    answer = await client.call_tool(tool, arguments)
    return answer.structured_content


async def test_a_change_reaches_the_audit_app_and_its_history_comes_back_by_invocation(
    cluster: Cluster,
) -> None:
    async with mcp(cluster) as client:
        added = await call(client, "add_task", title="Renew the passport")
        task_id = added["task"]["id"]

        async def history() -> list[Any]:
            entries: list[Any] = (await call(client, "task_history", task_id=task_id))["entries"]
            return entries

        entries = await eventually(history, what="the audit app to record the task")

    assert [entry["event_type"] for entry in entries] == ["TASK_CREATED"]
    invoked = cluster.mesh.sidecar("dueflow-api").invoked
    assert {(i.app_id, i.method) for i in invoked} == {("dueflow-audit", "history")}


async def test_one_trace_runs_from_the_tool_call_in_the_api_through_each_worker_process(
    cluster: Cluster, collector: Collector
) -> None:
    async with mcp(cluster) as client:
        added = await call(client, "add_task", title="Traced")
    task_id = added["task"]["id"]

    def created() -> list[Published]:
        return [
            p
            for p in cluster.mesh.sidecar("dueflow-api").published
            if p.topic == "task-events" and p.json()["task_id"] == task_id
        ]

    (message,) = await eventually(created, what="the API to publish the task's TASK_CREATED")
    # the publish carries its own span's context on to daprd (cloudevent.traceparent)
    _, trace_id, publish_id, _ = message.metadata["cloudevent.traceparent"].split("-")

    def handled_by() -> set[str]:
        return {
            s.service for s in collector.named("process task-events") if s.parent_id == publish_id
        }

    def chain() -> dict[str, ReceivedSpan]:
        """The trace's spans once the call, its commit and the publish have all arrived."""
        spans = {s.span_id: s for s in collector.spans if s.trace_id == trace_id}
        publish = spans.get(publish_id)
        commit = spans.get(publish.parent_id) if publish else None
        return spans if commit and commit.parent_id in spans else {}

    wanted = {"dueflow-audit", "dueflow-recurrence", "dueflow-reminders"}
    await eventually(lambda: wanted <= handled_by(), what="each worker's span of the event")
    spans = await eventually(chain, what="the API's spans of the call")
    publish = spans[publish_id]
    assert (publish.name, publish.service, publish.kind) == (
        "publish task-events",
        "dueflow-api",
        "PRODUCER",
    )
    assert publish.attributes["messaging.message.id"] == message.metadata["cloudevent.id"]
    commit = spans[publish.parent_id]
    root = spans[commit.parent_id]
    assert (commit.name, root.name, root.kind) == ("commit", "tools/call add_task", "SERVER")
    handlers = [s for s in collector.named("process task-events") if s.parent_id == publish_id]
    assert all(s.kind == "CONSUMER" and s.trace_id == trace_id for s in handlers)
    assert {s.attributes["dueflow.event_type"] for s in handlers} == {"TASK_CREATED"}


async def test_a_recurring_task_completed_while_its_worker_is_down_recurs_exactly_once(
    cluster: Cluster,
) -> None:
    async with mcp(cluster) as client:
        added = await call(
            client, "add_task", title="Water the plants", due=soon(86400), recurrence="FREQ=DAILY"
        )
        before = len(cluster.mesh.deliveries)
        cluster.stop("recurrence")
        await call(client, "complete_task", task_id=added["task"]["id"])
        await eventually(
            lambda: [d for d in cluster.mesh.deliveries[before:] if to_recurrence(d)],
            what="a delivery to the stopped recurrence worker",
        )
        cluster.start("recurrence")
        await cluster.ready("recurrence")

        async def open_plants() -> list[Any]:
            listed = await call(client, "list_tasks", query="Water the plants")
            tasks: list[Any] = listed["tasks"]
            return tasks

        [next_one] = await eventually(open_plants, what="the next occurrence")
        await asyncio.sleep(1)  # nothing more comes: redelivery finds the link already made
        assert len(await open_plants()) == 1

    tried = [d for d in cluster.mesh.deliveries[before:] if to_recurrence(d)]
    assert tried[0].answer != "SUCCESS" and tried[-1].answer == "SUCCESS"  # down, then back
    assert next_one["id"] != added["task"]["id"]
    assert cluster.mesh.dead_letters == []


async def test_a_reminder_fires_by_its_job_and_a_completed_tasks_reminder_never_does(
    cluster: Cluster, webhooks: list[dict[str, Any]]
) -> None:
    async with mcp(cluster) as client:
        kept = await call(
            client, "add_task", title="Call the bank", due=soon(3600), reminders=[soon(3)]
        )
        done = await call(client, "add_task", title="Pay rent", due=soon(3600), reminders=[soon(3)])
        await call(client, "complete_task", task_id=done["task"]["id"])

        await eventually(lambda: webhooks, timeout=20, what="the reminder's webhook")
        await asyncio.sleep(2)  # the other reminder's moment has passed too

    assert [hook["task"]["id"] for hook in webhooks] == [kept["task"]["id"]]
    assert [app for app, _ in cluster.mesh.fired_jobs] == ["dueflow-reminders"]
    assert cluster.mesh.sidecar("dueflow-reminders").jobs == {}


async def test_a_message_no_app_can_read_goes_to_each_subscribers_dead_letter_topic(
    cluster: Cluster,
) -> None:
    before = len(cluster.mesh.deliveries)
    poison = Published(
        "dueflow-pubsub",
        "task-events",
        b'{"not": "a v1 envelope"}',
        "application/json",
        {"cloudevent.id": "poison-1", "partitionKey": "nobody"},
    )
    cluster.mesh.sidecar("dueflow-api").published.append(poison)
    subscribers = {"dueflow-audit", "dueflow-recurrence", "dueflow-reminders"}

    await eventually(
        lambda: len([d for d in cluster.mesh.dead_letters if d[1] is poison]) == len(subscribers),
        what="the poison message in every subscriber's dead-letter topic",
    )
    tried = [d for d in cluster.mesh.deliveries[before:] if d.event_id == "poison-1"]
    assert sorted(d.app_id for d in tried) == sorted(subscribers)  # once each: DROP, no retry
    assert {d.answer for d in tried} == {"DROP"}
    assert {topic for topic, event in cluster.mesh.dead_letters if event is poison} == {
        "task-events-dead-letter"
    }
