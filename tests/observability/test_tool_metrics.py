"""The tool-call middleware through a real in-memory MCP client: each outcome under the right
label, whatever raised it."""

from __future__ import annotations

from fastmcp import Client
from fastmcp.tools import ToolResult
from prometheus_client import REGISTRY

from dueflow.bootstrap import Runtime
from mcp_server.tooling import READ, domain_errors
from tests.support.tools import server_for


def calls(tool: str, outcome: str) -> float:
    found = REGISTRY.get_sample_value(
        "dueflow_mcp_tool_calls_total", {"tool": tool, "outcome": outcome}
    )
    return found or 0.0


async def test_failures_no_refusal_explains_count_as_internal_errors(runtime: Runtime) -> None:
    server = server_for(runtime, "alice")

    @server.tool(annotations=READ)
    @domain_errors
    async def metrics_probe_caught() -> ToolResult:
        """Fails the way a tool's unexpected error does."""
        raise RuntimeError("the disk is full")

    @server.tool(annotations=READ)
    async def metrics_probe_uncaught() -> ToolResult:
        """Fails without the tool's own error translation."""
        raise RuntimeError("the disk is full")

    before = {
        name: calls(name, "internal_error")
        for name in ("metrics_probe_caught", "metrics_probe_uncaught")
    }
    refused_before = calls("get_task", "refused")
    async with Client(server) as client:
        for name in before:
            assert (await client.call_tool_mcp(name, {})).is_error
        assert (await client.call_tool_mcp("get_task", {"task_id": "missing"})).is_error

    for name, count in before.items():
        assert calls(name, "internal_error") == count + 1
        assert calls(name, "refused") == 0
    assert calls("get_task", "refused") == refused_before + 1
