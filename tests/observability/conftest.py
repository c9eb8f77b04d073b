"""A real `dueflow serve --transport http`, configured only by DUEFLOW_* settings on a port of
its own, driven through a real MCP client: what its /metrics answers after that workload."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastmcp import Client

from tests.support.metrics import Scraped
from tests.support.servers import (
    ALICE_TOKEN,
    STARTUP_SECONDS,
    child_env,
    dueflow_command,
    free_port,
    wait_until_listening,
)
from tests.support.waiting import eventually


@dataclass(frozen=True)
class Served:
    """A running `dueflow serve --transport http` and its base URL."""

    process: subprocess.Popen[str]
    base: str

    async def scrape(self) -> Scraped:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(f"{self.base}/metrics")
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain")
        return Scraped.parse(answer.text)


def start_http_server(home: Path, port: int) -> subprocess.Popen[str]:
    """`dueflow serve --transport http` on `port`, configured by its DUEFLOW_* settings only."""
    env = child_env(
        home,
        DUEFLOW_DATA_DIR=str(home / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        DUEFLOW_RELAY_POLL_SECONDS="0.1",
        DUEFLOW_NOTIFICATION_POLL_SECONDS="0.2",
    )
    return subprocess.Popen(
        dueflow_command("serve", "--transport", "http", "--port", str(port)),
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("served")
    port = free_port()
    process = start_http_server(home, port)
    try:
        asyncio.run(wait_until_listening(process, port))  # type: ignore[arg-type]
        yield Served(process, f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.communicate(timeout=STARTUP_SECONDS)


async def workload(served: Served) -> None:
    """What an agent does in a minute: tasks added (one with a reminder a few seconds away, one
    recurring, completed), a refused call, a call to a tool that does not exist, and two
    requests without a valid token; it returns once the reminder's notification is out."""
    # the reminder fires about 3 s from now: time enough to be scheduled on a slow machine (the
    # waits below allow a minute: a machine busy with other test processes is slow to fire it)
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=8)
    async with Client(f"{served.base}/mcp", auth=ALICE_TOKEN) as client:
        for n in range(3):
            added = await client.call_tool_mcp("add_task", {"title": f"Task {n}"})
            assert not added.is_error
        reminded = await client.call_tool_mcp(
            "add_task",
            {"title": "Call the bank", "due": soon.isoformat(), "reminders": ["PT5S"]},
        )
        assert not reminded.is_error, reminded.content
        recurring = await client.call_tool_mcp(
            "add_task", {"title": "Water the plants", "due": "tomorrow 9am", "recurrence": "daily"}
        )
        assert not recurring.is_error, recurring.content
        task_id = (recurring.structured_content or {})["task"]["id"]
        completed = await client.call_tool_mcp("complete_task", {"task_id": task_id})
        assert not completed.is_error, completed.content
        refused = await client.call_tool_mcp("add_task", {"title": "x", "priority": "soonish"})
        assert refused.is_error
        unknown = await client.call_tool_mcp("no_such_tool", {})
        assert unknown.is_error
    async with httpx.AsyncClient(timeout=10) as http:
        missing = await http.post(f"{served.base}/mcp", json={})
        forged = await http.post(
            f"{served.base}/mcp", json={}, headers={"Authorization": "Bearer not-a-token-at-all"}
        )
    assert (missing.status_code, forged.status_code) == (401, 401)

    async def notified() -> bool:
        scraped = await served.scrape()
        return scraped.value("dueflow_notifications_total", channel="log", outcome="delivered") > 0

    await eventually(notified, timeout=60, what="the reminder's notification on the log channel")


@pytest.fixture(scope="module")
def scraped(served: Served) -> Scraped:
    """/metrics of `served` after the workload, once every event has been applied."""
    asyncio.run(workload(served))

    async def settled() -> Scraped | None:
        found = await served.scrape()
        audited = found.value(
            "dueflow_events_handled_total", worker="audit", topic="task-events", outcome="success"
        )
        backlog = found.value("dueflow_outbox_backlog_rows")
        return found if audited >= 7 and backlog == 0 else None

    return asyncio.run(eventually(settled, timeout=60, what="every event applied"))
