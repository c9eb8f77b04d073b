"""Bench-only MCP server: the real Dueflow stdio server plus one `noop` tool on the same FastMCP.

Configured like `dueflow serve` from DUEFLOW_* variables of the environment. Logs go to stderr
only; stdout carries nothing but the MCP protocol.

Extra variable (bench only):
  DUEFLOW_BENCH_RELAY=off        serve without the outbox relay (diagnosis: the relay's share)
  DUEFLOW_BENCH_CPROFILE=<path>  run the whole server under cProfile and dump the stats there
                                 when stdin closes (for `bench_stdio.py --profile`).
  DUEFLOW_BENCH_TIMINGS=<path>   time each tools/call inside the server (the middleware chain
                                 and the tool, without the transport) and write the samples
                                 there as JSON when stdin closes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult
from pydantic import BaseModel

from dueflow.bootstrap import bootstrap
from dueflow.heap import settle_heap
from dueflow.settings import Settings
from mcp_server.server import build_server

log = logging.getLogger("dueflow.bench")


class NoopResult(BaseModel):
    ok: bool


def add_noop(mcp: FastMCP) -> None:
    """A tool that does nothing, but answers the way the real tools do (text + structured)."""

    @mcp.tool(
        annotations=mt.ToolAnnotations(
            read_only_hint=True, destructive_hint=False, idempotent_hint=True
        ),
        output_schema=NoopResult.model_json_schema(),
    )
    async def noop() -> ToolResult:
        """Do nothing (benchmark baseline)."""
        return ToolResult(content="ok", structured_content=NoopResult(ok=True))


class CallTimings(Middleware):
    """Seconds each tools/call spent inside the server, by tool (outermost middleware)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {}

    async def on_call_tool(
        self, context: MiddlewareContext[Any], call_next: CallNext[Any, Any]
    ) -> Any:
        started = time.perf_counter()
        try:
            return await call_next(context)
        finally:
            elapsed = time.perf_counter() - started
            self.samples.setdefault(context.message.name, []).append(elapsed)


async def serve(settings: Settings) -> None:
    runtime = await bootstrap(settings)
    timings_to = os.environ.get("DUEFLOW_BENCH_TIMINGS")
    timings = CallTimings()
    try:
        server = build_server(
            runtime.service,
            settings.user,
            foreground=runtime.foreground,
            # as `dueflow serve` over stdio: tool calls are measured when the metrics port is set
            metrics=settings.metrics_port is not None,
        )
        if timings_to:
            server.middleware.insert(0, timings)
        add_noop(server)
        settle_heap()  # as `dueflow serve` does once it is wired
        log.info("bench server on %s", runtime.engine.url.render_as_string())
        if os.environ.get("DUEFLOW_BENCH_RELAY", "on") == "off":
            # diagnosis only: how much of the figures is the relay's work beside the requests
            await server.run_async(transport="stdio", show_banner=False)
            return
        # as `dueflow serve` does: the outbox relay delivers each change to the embedded consumers
        async with runtime.running():
            await server.run_async(transport="stdio", show_banner=False)
    finally:
        await runtime.close()
        if timings_to:
            Path(timings_to).write_text(json.dumps(timings.samples))


def main() -> None:
    settings = Settings.from_env()
    logging.basicConfig(
        stream=sys.stderr,
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    profile_to = os.environ.get("DUEFLOW_BENCH_CPROFILE")
    if not profile_to:
        asyncio.run(serve(settings))
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        asyncio.run(serve(settings))
    finally:
        profiler.disable()
        profiler.dump_stats(profile_to)


if __name__ == "__main__":
    main()
