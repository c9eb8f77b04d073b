"""Where the SDK finds a tool's input schema to check a call's `Mcp-Param-*` headers.

Over streamable HTTP the SDK compares each `tools/call`'s `Mcp-Param-*` headers with the
arguments its tool's schema marks `x-mcp-header`. Without a lookup it finds that schema by
running a whole `tools/list` through every middleware, on every call: the largest single cost of
a small call. The tools' schemas are fixed once the server is built, so they are read once."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastmcp import FastMCP
from mcp.shared.inbound import X_MCP_HEADER_KEY


async def serve_param_header_schemas(mcp: FastMCP) -> dict[str, Mapping[str, Any]]:
    """Hand the SDK a lookup of the schemas that declare `x-mcp-header` arguments; answer them.

    A tool that declares none has no header to compare: the lookup answers None for it, which
    the SDK reads as "nothing to validate", exactly what a walk of its schema would conclude."""
    declaring: dict[str, Mapping[str, Any]] = {
        tool.name: tool.parameters
        for tool in await mcp.list_tools()
        if X_MCP_HEADER_KEY in json.dumps(tool.parameters)
    }
    # FastMCP 4.1 offers no public accessor to its low-level server (the SDK's)
    mcp._mcp_server.get_tool_input_schema = declaring.get
    return declaring
