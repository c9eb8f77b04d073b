"""/metrics where there is no HTTP transport (DUEFLOW_METRICS_PORT: stdio, the relay) and on a
worker's Dapr app, driven through its endpoints as Dapr drives them."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from domain.clock import FixedClock
from domain.service import NewTask
from dueflow.bootstrap import Runtime
from tests.support.dapr_apps import PUBSUB, client_for, deliver
from tests.support.database import envelopes
from tests.support.metrics import Scraped
from tests.support.servers import (
    INITIALIZE,
    STARTUP_SECONDS,
    answer,
    child_env,
    dueflow_command,
    free_port,
    run_dueflow,
    send,
    wait_until_listening,
)
from workers.audit import AUDIT_CONSUMER
from workers.consumer import Consumer, ConsumerRunner, Outcome, Received
from workers.dapr_app import build_app


async def scrape(url: str) -> Scraped:
    async with httpx.AsyncClient(timeout=10) as http:
        found = await http.get(url)
    assert found.status_code == 200, found.text
    return Scraped.parse(found.text)


def test_a_stdio_server_serves_its_metrics_on_the_metrics_port(tmp_path: Path) -> None:
    port = free_port()
    with subprocess.Popen(
        dueflow_command("serve"),
        env=child_env(
            tmp_path,
            DUEFLOW_DATA_DIR=str(tmp_path / "data"),
            DUEFLOW_METRICS_PORT=str(port),
        ),
        cwd=tmp_path,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        try:
            send(server, INITIALIZE)
            assert answer(server)["id"] == 1
            send(server, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            call = {"name": "add_task", "arguments": {"title": "Over stdio"}}
            send(server, {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
            assert not answer(server)["result"].get("isError")
            asyncio.run(wait_until_listening(server, port))  # type: ignore[arg-type]
            scraped = asyncio.run(scrape(f"http://127.0.0.1:{port}/metrics"))
        finally:
            assert server.stdin is not None and server.stderr is not None
            server.stdin.close()  # end of input: the server stops
            server.wait(timeout=STARTUP_SECONDS)
            err = server.stderr.read()
    assert scraped.value("dueflow_mcp_tool_calls_total", tool="add_task", outcome="ok") == 1
    assert "dueflow_outbox_backlog_rows" in scraped.samples
    assert f"metrics at http://127.0.0.1:{port}/metrics" in err
    assert server.returncode == 0


def test_a_metrics_port_in_use_stops_the_relay_with_the_setting_named(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = run_dueflow(
            tmp_path,
            "relay",
            DUEFLOW_DATA_DIR=str(tmp_path / "data"),
            DUEFLOW_METRICS_PORT=str(port),
        )
    assert ran.returncode == 2
    assert "DUEFLOW_METRICS_PORT" in ran.stderr and str(port) in ran.stderr


def test_a_metrics_port_that_is_not_a_port_is_refused_at_start(tmp_path: Path) -> None:
    ran = run_dueflow(tmp_path, "relay", DUEFLOW_METRICS_PORT="99999")
    assert ran.returncode == 2
    assert "DUEFLOW_METRICS_PORT" in ran.stderr


async def _failing(event: Received, session: AsyncSession) -> Outcome:
    raise RuntimeError("the database went away")


async def _dropping(event: Received, session: AsyncSession) -> Outcome:
    return Outcome.DROP


async def test_a_worker_app_counts_each_delivery_by_outcome_on_its_metrics_route(
    runtime: Runtime, clock: FixedClock
) -> None:
    sessions = async_sessionmaker(runtime.engine, expire_on_commit=False)
    flaky = Consumer(name="metrics-flaky", handlers={"task-events": _failing})
    picky = Consumer(name="metrics-picky", handlers={"task-events": _dropping})
    runner = ConsumerRunner(sessions, clock)
    app = build_app([AUDIT_CONSUMER, flaky, picky], runner, PUBSUB, sessions=sessions)
    await runtime.service.add("alice", NewTask(title="Counted"))
    [envelope] = await envelopes(runtime)

    async with client_for(app) as client:
        before = Scraped.parse((await client.get("/metrics")).text)
        assert await deliver(client, envelope) == "RETRY"
        assert await deliver(client, envelope) == "RETRY"
        after = Scraped.parse((await client.get("/metrics")).text)

    def moved(worker: str, outcome: str) -> float:
        labels = {"worker": worker, "topic": "task-events", "outcome": outcome}
        handled = "dueflow_events_handled_total"
        return after.value(handled, **labels) - before.value(handled, **labels)

    assert (moved("audit", "success"), moved("audit", "duplicate")) == (1, 1)
    assert moved("metrics-flaky", "error") == 2
    assert moved("metrics-picky", "drop") == 2
    # the series exist before the first delivery (at zero in a fresh process): rate() sees it
    picky_drop = {"worker": "metrics-picky", "topic": "task-events", "outcome": "drop"}
    assert picky_drop in [labels for labels, _ in before.samples["dueflow_events_handled_total"]]
    entries = "dueflow_audit_entries_written_total"
    assert after.value(entries) - before.value(entries) == 1
