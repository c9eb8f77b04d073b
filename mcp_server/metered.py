"""Tool-call metrics: the outermost middleware counts every tools/call by tool and outcome and
times it (domain.adapters.metrics defines the metrics; mcp_server/outcomes.py tells outcomes)."""

from __future__ import annotations

from domain.adapters.metrics import TOOL_CALL_SECONDS, TOOL_CALLS, declare_tools
from mcp_server.outcomes import Outcomes


class ToolMetrics(Outcomes):
    """Counts each tools/call (ok, refused, internal_error) and observes its duration, labelled
    by tool (`unknown` for a name the server has no tool for)."""

    def observe(self, tool: str, outcome: str, seconds: float) -> None:
        TOOL_CALL_SECONDS.labels(tool).observe(seconds)
        TOOL_CALLS.labels(tool, outcome).inc()

    def named(self, tools: frozenset[str]) -> None:
        declare_tools(tools)
