"""Each tools/call's outcome — ok, refused or internal_error — for the middleware that reports it:
a log line per call (CallLog, always on) and the metrics (mcp_server/metered.py, when asked)."""

from __future__ import annotations

import logging
import time

import mcp_types as mt
from fastmcp.exceptions import FastMCPError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from mcp import MCPError

from mcp_server.tooling import InternalError, UnknownTool

log = logging.getLogger("dueflow.mcp.calls")
OK, REFUSED, INTERNAL = "ok", "refused", "internal_error"
UNKNOWN = "unknown"  # a call to a tool the server lacks: reported names stay bounded


class Outcomes(Middleware):
    """Tells `observe` how each tools/call ended and how long it took. A name the server has no
    tool for is `unknown`, whatever refused the call (a rate limit answers before the tool is
    looked up); a cancelled call (the client went away) is not observed."""

    def __init__(self) -> None:
        self._names: frozenset[str] | None = None  # the server's tools, read on the first call

    def observe(self, tool: str, outcome: str, seconds: float) -> None:
        raise NotImplementedError

    def named(self, tools: frozenset[str]) -> None:
        """The server's tools, once they are read (before the first observation)."""

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
                self.observe(tool, outcome, time.perf_counter() - started)

    async def _label(self, context: MiddlewareContext[mt.CallToolRequestParams]) -> str:
        name = context.message.name
        if self._names is None or name not in self._names:
            server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
            if server is None:
                return UNKNOWN
            tools = await server.list_tools(run_middleware=False)
            self._names = frozenset(tool.name for tool in tools)
            self.named(self._names | {UNKNOWN})
        return name if name in self._names else UNKNOWN


class CallLog(Outcomes):
    """One log line per tools/call: the tool, its outcome and its duration (and, through the
    log format, the trace and correlation ids of the call)."""

    def observe(self, tool: str, outcome: str, seconds: float) -> None:
        log.info("%s: %s in %.1f ms", tool, outcome, seconds * 1000)
