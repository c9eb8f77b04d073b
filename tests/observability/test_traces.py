"""Traces (#18): one trace from the MCP call through its commit, the relay's publish of each event
and every worker's handling of it, exported over OTLP/HTTP when DUEFLOW_OTLP_ENDPOINT is set and
not at all otherwise. `dueflow serve` runs as its own process, exporting to a stand-in collector
(tests/support/otlp.py); the distributed path (one process per worker, the trace carried in the
CloudEvent) is tests/deploy/test_mesh_end_to_end.py's."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastmcp import Client
from fastmcp.client.transports import StdioTransport

from tests.support.otlp import Collector, ReceivedSpan
from tests.support.servers import STARTUP_SECONDS, child_env, dueflow_command, serving
from tests.support.waiting import eventually


@pytest.fixture
async def collector() -> AsyncIterator[tuple[Collector, str]]:
    received = Collector()
    async with serving(received.app()) as url:
        yield received, url


def stdio(home: Path, **env: str) -> StdioTransport:
    command, *args = dueflow_command("serve")
    return StdioTransport(
        command=command,
        args=args,
        env=child_env(
            home,
            DUEFLOW_DATA_DIR=str(home / "data"),
            DUEFLOW_USER="alice",
            OTEL_BSP_SCHEDULE_DELAY="50",
            **env,
        ),
        cwd=str(home),
        keep_alive=False,
        log_file=home / "stderr.log",
    )


def one(spans: list[ReceivedSpan], what: str) -> ReceivedSpan:
    assert len(spans) == 1, (what, spans)
    return spans[0]


async def test_one_trace_runs_from_the_tool_call_through_its_commit_publish_and_handlers(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    received, url = collector
    transport = stdio(tmp_path, DUEFLOW_OTLP_ENDPOINT=url, DUEFLOW_LOG_FORMAT="json")
    async with Client(transport, timeout=STARTUP_SECONDS) as client:
        await client.call_tool(
            "add_task", {"title": "traced", "due": "2027-01-05T09:00Z", "reminders": ["PT15M"]}
        )

        def handled() -> bool:
            return {"audit", "reminders"} <= {
                s.attributes.get("dueflow.consumer") for s in received.named("process task-events")
            }

        await eventually(handled, timeout=STARTUP_SECONDS, what="the handlers' spans")

    call = one(received.named("tools/call add_task"), "the tool call")
    assert call.service == "dueflow-api" and call.kind == "SERVER"
    commit = one([s for s in received.named("commit") if s.parent_id == call.span_id], "its commit")
    publish = one(
        [s for s in received.named("publish task-events") if s.parent_id == commit.span_id],
        "the publish of its TASK_CREATED",
    )
    assert publish.kind == "PRODUCER"
    assert publish.attributes["dueflow.event_type"] == "TASK_CREATED"
    handlers = [
        s for s in received.named("process task-events") if s.attributes["dueflow.event_type"]
    ]
    assert {s.trace_id for s in [commit, publish, *handlers]} == {call.trace_id}
    assert all(s.kind == "CONSUMER" and s.parent_id == commit.span_id for s in handlers)
    # the reminders worker's own event (REMINDER_SCHEDULED) carries the trace on
    scheduled = [
        s for s in received.spans if s.attributes.get("dueflow.event_type") == "REMINDER_SCHEDULED"
    ]
    assert scheduled and {s.trace_id for s in scheduled} == {call.trace_id}
    # and the log lines written meanwhile name the trace
    lines = [json.loads(line) for line in (tmp_path / "stderr.log").read_text().splitlines()]
    assert any(line.get("trace_id") == call.trace_id for line in lines), lines[-5:]


async def test_without_an_endpoint_nothing_is_exported_and_no_event_carries_a_traceparent(
    tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    received, _ = collector
    async with Client(stdio(tmp_path), timeout=STARTUP_SECONDS) as client:
        added = await client.call_tool("add_task", {"title": "untraced"})
        task_id = added.structured_content["task"]["id"]
        history = await client.call_tool("task_history", {"task_id": task_id})
    assert received.spans == []
    assert "traceparent" not in json.dumps(history.structured_content)
