"""A real Prometheus (Debian's package) on 127.0.0.1 scrapes a running `dueflow serve --transport
http` with the alert rules loaded, and its query API answers the counter a workload moved."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastmcp import Client

from tests.observability.conftest import start_http_server
from tests.support.metrics import RULES, tool
from tests.support.servers import (
    ALICE_TOKEN,
    STARTUP_SECONDS,
    free_port,
    wait_until_listening,
)
from tests.support.waiting import eventually


@pytest.fixture
def dueflow_port(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    process = start_http_server(tmp_path, port)
    try:
        asyncio.run(wait_until_listening(process, port))  # type: ignore[arg-type]
        yield port
    finally:
        process.terminate()
        process.communicate(timeout=STARTUP_SECONDS)


@pytest.fixture
def prometheus(tmp_path: Path, dueflow_port: int) -> Iterator[str]:
    """Prometheus scraping the server every second, the rules loaded; yields its base URL."""
    binary = tool("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(RULES)],
                "scrape_configs": [
                    {
                        "job_name": "dueflow-api",
                        "static_configs": [{"targets": [f"127.0.0.1:{dueflow_port}"]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        async def ready() -> bool:
            assert process.poll() is None, "prometheus exited"
            try:
                async with httpx.AsyncClient(timeout=2) as http:
                    return (await http.get(f"{base}/-/ready")).status_code == 200
            except httpx.TransportError:
                return False

        asyncio.run(eventually(ready, timeout=30, what="Prometheus to be ready"))
        yield base
    finally:
        process.terminate()
        process.communicate(timeout=STARTUP_SECONDS)


async def query(base: str, promql: str) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=5) as http:
        answer = await http.get(f"{base}/api/v1/query", params={"query": promql})
    body: dict[str, Any] = answer.json()
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def test_prometheus_scrapes_the_server_and_answers_the_counter_a_workload_moved(
    prometheus: str, dueflow_port: int
) -> None:
    async def scenario() -> None:
        async with Client(f"http://127.0.0.1:{dueflow_port}/mcp", auth=ALICE_TOKEN) as client:
            for title in ("Book the venue", "Send the invitations"):
                assert not (await client.call_tool_mcp("add_task", {"title": title})).is_error

        async def counted() -> list[dict[str, Any]]:
            found = await query(
                prometheus, 'dueflow_mcp_tool_calls_total{tool="add_task",outcome="ok"}'
            )
            return [series for series in found if float(series["value"][1]) == 2]

        series = await eventually(counted, timeout=30, what="Prometheus to see two add_task calls")
        assert series[0]["metric"]["job"] == "dueflow-api"
        up = await query(prometheus, 'up{job="dueflow-api"}')
        assert [float(found["value"][1]) for found in up] == [1.0]

        async def evaluated() -> list[dict[str, Any]]:
            async with httpx.AsyncClient(timeout=5) as http:
                groups = (await http.get(f"{prometheus}/api/v1/rules")).json()["data"]["groups"]
            rules = [rule for group in groups for rule in group["rules"]]
            return rules if rules and all(rule["health"] == "ok" for rule in rules) else []

        loaded = await eventually(evaluated, timeout=30, what="the rules evaluated without error")
        assert len(loaded) >= 9
        # all is well: nothing fires
        assert all(rule["state"] != "firing" for rule in loaded), loaded

    asyncio.run(scenario())
