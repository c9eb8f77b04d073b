"""Tool-call metrics: the outermost middleware counts every tools/call by tool and outcome and
times it (domain.adapters.metrics defines the metrics)."""

from __future__ import annotations

import time

import mcp_types as mt
from fastmcp.exceptions import FastMCPError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from mcp import MCPError

from domain.adapters.metrics import TOOL_CALL_SECONDS, TOOL_CALLS, declare_tools
from mcp_server.tooling import InternalError, UnknownTool

OK, REFUSED, INTERNAL = "ok", "refused", "internal_error"
UNKNOWN = "unknown"  # the tool label of a call to a tool the server lacks: names stay bounded


class ToolMetrics(Middleware):
    """Counts each tools/call (ok, refused, internal_error) and observes its duration. A name
    the server has no tool for is labelled `unknown`, whatever refused the call (a rate limit
    answers before the tool is looked up)."""

    def __init__(self) -> None:
        self._names: frozenset[str] | None = None  # the server's tools, read on the first call

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        started = time.perf_counter()
        tool = await self._label(context)
        outcome: str | None = OK
        try:
            result = await call_next(context)
            if result.is_error:
                outcome = REFUSED
            return result
        except UnknownTool:
            tool, outcome = UNKNOWN, REFUSED
            raise
        except InternalError:
            outcome = INTERNAL
            raise
        except (FastMCPError, MCPError):
            outcome = REFUSED
            raise
        except Exception:
            outcome = INTERNAL
            raise
        except BaseException:
            outcome = None  # cancelled (the client went away): neither answered nor failed
            raise
        finally:
            if outcome is not None:
                TOOL_CALL_SECONDS.labels(tool).observe(time.perf_counter() - started)
                TOOL_CALLS.labels(tool, outcome).inc()

    async def _label(self, context: MiddlewareContext[mt.CallToolRequestParams]) -> str:
        name = context.message.name
        if self._names is None or name not in self._names:
            server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
            if server is None:
                return UNKNOWN
            tools = await server.list_tools(run_middleware=False)
            self._names = frozenset(tool.name for tool in tools)
            declare_tools(self._names | {UNKNOWN})
        return name if name in self._names else UNKNOWN
