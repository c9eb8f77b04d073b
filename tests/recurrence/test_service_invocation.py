"""The recurrence worker in Dapr mode: the next occurrence comes from the task API, reached by
Dapr service invocation through the (fake) sidecar. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from domain.adapters.internal_api import RECUR_PATH, TOKEN_HEADER
from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime
from dueflow.settings import Settings
from mcp_server.internal_api import internal_app, mount_internal_api
from mcp_server.server import build_server
from tests.fakes.dapr_sidecar import FakeDaprSidecar
from tests.support.dapr_apps import deliver
from tests.support.database import envelopes, rows
from workers.dapr_app import build_app
from workers.dapr_invoker import DaprInvoker
from workers.recurrence import InvokingRunner
from workers.registry import build_consumers

TOKEN = "internal-token-0123456789"
API = "dueflow-api"


@pytest.fixture
async def invoker(sidecar: FakeDaprSidecar) -> AsyncIterator[DaprInvoker]:
    dapr = DaprInvoker(API, TOKEN, sidecar.http_endpoint, timeout=5.0)
    try:
        yield dapr
    finally:
        await dapr.aclose()


@pytest.fixture
async def worker(
    runtime: Runtime, clock: FixedClock, invoker: DaprInvoker
) -> AsyncIterator[httpx.AsyncClient]:
    """The recurrence worker's Dapr app, invoking the API through the sidecar."""
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    consumer = build_consumers(clock, "Europe/Berlin", invoke=invoker)["recurrence"]
    app = build_app(
        [consumer], InvokingRunner(sessions, clock, invoker), "pubsub", sessions=sessions
    )
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://recurrence") as client:
        yield client


async def completed_recurring(runtime: Runtime, user: str = "alice") -> tuple[str, dict[str, Any]]:
    """A completed monthly task of `user` and its TASK_COMPLETED envelope from the outbox."""
    added = await runtime.service.add(
        user, NewTask(title="Invoice", due="2026-11-30", recurrence="FREQ=MONTHLY;BYMONTHDAY=-1")
    )
    await runtime.service.complete(user, added.task.id)
    [envelope] = await envelopes(
        runtime, "event_type = 'TASK_COMPLETED' AND task_id = :t", t=added.task.id
    )
    return added.task.id, envelope


async def open_tasks(runtime: Runtime, user: str = "alice") -> list[tuple[str, str]]:
    found = await rows(
        runtime,
        "SELECT id, title FROM tasks WHERE user_id = :u AND status = 'open' ORDER BY id",
        u=user,
    )
    return [(str(r[0]), str(r[1])) for r in found]


async def test_the_worker_creates_the_next_occurrence_through_the_task_api(
    runtime: Runtime, sidecar: FakeDaprSidecar, worker: httpx.AsyncClient
) -> None:
    sidecar.route_app(API, internal_app(runtime.service, TOKEN))
    task_id, envelope = await completed_recurring(runtime)

    assert [await deliver(worker, envelope) for _ in range(2)] == ["SUCCESS", "SUCCESS"]

    [(next_id, title)] = await open_tasks(runtime)
    assert title == "Invoice"
    [call] = sidecar.invoked  # the redelivery found the event in the inbox and called nobody
    assert (call.app_id, call.method, call.http_verb) == (API, "internal/recurrence/next", "POST")
    assert call.content_type == "application/json"
    assert call.headers[TOKEN_HEADER] == TOKEN
    assert call.json() == {
        "user_id": "alice",
        "task_id": task_id,
        "causation_id": envelope["event_id"],
    }
    recurred = await rows(runtime, "SELECT recurred_to FROM tasks WHERE id = :t", t=task_id)
    assert recurred[0][0] == next_id
    inbox = await rows(
        runtime,
        "SELECT count(*) FROM processed_events WHERE consumer = 'recurrence' AND event_id = :e",
        e=envelope["event_id"],
    )
    assert inbox[0][0] == 1


async def test_a_repeated_invocation_creates_nothing_twice(
    runtime: Runtime, sidecar: FakeDaprSidecar, invoker: DaprInvoker
) -> None:
    sidecar.route_app(API, internal_app(runtime.service, TOKEN))
    task_id, envelope = await completed_recurring(runtime)
    for _ in range(2):
        await invoker("alice", task_id, envelope["event_id"])
    assert len(await open_tasks(runtime)) == 1
    assert len(sidecar.invoked) == 2


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({TOKEN_HEADER: "wrong-token-0123456789"}, 403)],
    ids=["no-token", "wrong-token"],
)
async def test_the_internal_route_refuses_a_caller_without_the_token(
    runtime: Runtime, headers: dict[str, str], status: int
) -> None:
    task_id, envelope = await completed_recurring(runtime)
    transport = httpx.ASGITransport(app=internal_app(runtime.service, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        response = await api.post(
            RECUR_PATH,
            json={"user_id": "alice", "task_id": task_id, "causation_id": envelope["event_id"]},
            headers=headers,
        )
    assert response.status_code == status
    assert TOKEN_HEADER in response.json()["error"]
    assert await open_tasks(runtime) == []


async def test_a_worker_with_the_wrong_token_drops_the_event_and_creates_nothing(
    runtime: Runtime, sidecar: FakeDaprSidecar, worker: httpx.AsyncClient
) -> None:
    sidecar.route_app(API, internal_app(runtime.service, "another-token-0123456789"))
    _, envelope = await completed_recurring(runtime)
    assert await deliver(worker, envelope) == "DROP"
    assert await open_tasks(runtime) == []


async def test_the_internal_route_rejects_malformed_requests(runtime: Runtime) -> None:
    transport = httpx.ASGITransport(app=internal_app(runtime.service, TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        bad = await api.post(RECUR_PATH, json={"user_id": "alice"}, headers={TOKEN_HEADER: TOKEN})
        ok = await api.post(
            RECUR_PATH,
            json={"user_id": "alice", "task_id": "no-such-task", "causation_id": None},
            headers={TOKEN_HEADER: TOKEN},
        )
    assert bad.status_code == 400 and "task_id" in bad.json()["error"]
    assert ok.status_code == 200 and ok.json() == {"next_task_id": None}


@pytest.mark.parametrize("down", ["unregistered", "refusing"])
async def test_the_worker_answers_retry_while_the_api_is_down(
    runtime: Runtime, sidecar: FakeDaprSidecar, worker: httpx.AsyncClient, down: str
) -> None:
    _, envelope = await completed_recurring(runtime)
    if down == "refusing":
        sidecar.route_app(API, internal_app(runtime.service, TOKEN))
        sidecar.refuse = True
    assert await deliver(worker, envelope) == "RETRY"
    assert await open_tasks(runtime) == []
    # the API comes back: the redelivery creates the next occurrence
    sidecar.refuse = False
    sidecar.route_app(API, internal_app(runtime.service, TOKEN))
    assert await deliver(worker, envelope) == "SUCCESS"
    assert len(await open_tasks(runtime)) == 1


async def test_the_worker_answers_retry_while_the_sidecar_is_unreachable(
    runtime: Runtime, sidecar: FakeDaprSidecar, worker: httpx.AsyncClient
) -> None:
    _, envelope = await completed_recurring(runtime)
    await sidecar.stop()
    assert await deliver(worker, envelope) == "RETRY"
    assert await open_tasks(runtime) == []


def test_the_settings_read_the_internal_token_and_the_api_app_id() -> None:
    settings = Settings.from_env({"DUEFLOW_INTERNAL_TOKEN": TOKEN})
    assert (settings.internal_token, settings.api_app_id) == (TOKEN, "dueflow-api")
    assert Settings.from_env({}).internal_token is None
    with pytest.raises(ValueError, match="16 characters"):
        Settings.from_env({"DUEFLOW_INTERNAL_TOKEN": "short"})


async def test_dueflow_serve_mounts_the_internal_route_next_to_mcp(runtime: Runtime) -> None:
    server = build_server(runtime.service, "alice")
    mount_internal_api(server, runtime.service, TOKEN)
    task_id, envelope = await completed_recurring(runtime)
    transport = httpx.ASGITransport(app=server.http_app(path="/mcp"))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as api:
        body = {"user_id": "alice", "task_id": task_id, "causation_id": envelope["event_id"]}
        refused = await api.post(RECUR_PATH, json=body)
        created = await api.post(RECUR_PATH, json=body, headers={TOKEN_HEADER: TOKEN})
    assert refused.status_code == 401
    assert created.status_code == 200
    [(next_id, _)] = await open_tasks(runtime)
    assert created.json() == {"next_task_id": next_id}
