"""Scopes on tools and resources: a bearer token's scopes decide which tools it may call and
whether it may read the resources. A tool marked read-only (its readOnlyHint) needs tasks:read,
every other tool tasks:write; reading a resource needs tasks:read. stdio has no token and every
scope."""

from __future__ import annotations

import logging

import mcp_types as mt
from fastmcp.exceptions import ResourceError, ToolError
from fastmcp.resources import ResourceResult
from fastmcp.server.dependencies import get_access_token
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import ToolResult

from domain.access import READ, WRITE
from mcp_server.tooling import ReadOnlyTools


class ScopeGuard(Middleware):
    """Refuses a call the caller's token has no scope for, in the one refusal style."""

    def __init__(self) -> None:
        self._tools = ReadOnlyTools()

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        token = get_access_token()
        if token is None:
            return await call_next(context)
        reads = await self._tools.reads_only(context)
        if reads is None:  # the Refusals middleware answers an unknown tool
            return await call_next(context)
        needed = READ if reads else WRITE
        if needed not in token.scopes:
            raise ToolError(
                f"scope: this token may not call {context.message.name}, which needs {needed} (the"
                " token has"
                f" {' '.join(token.scopes) or 'no scope'}). Fix: use a token with {needed}, e.g."
                f" from `dueflow tokens create --user {token.client_id} --scope {needed}`.",
                log_level=logging.INFO,
            )
        return await call_next(context)

    async def on_read_resource(
        self,
        context: MiddlewareContext[mt.ReadResourceRequestParams],
        call_next: CallNext[mt.ReadResourceRequestParams, ResourceResult],
    ) -> ResourceResult:
        token = get_access_token()
        if token is not None and READ not in token.scopes:
            raise ResourceError(
                f"scope: this token may not read {context.message.uri}, which needs {READ} (the"
                f" token has {' '.join(token.scopes) or 'no scope'}). Fix: use a token with"
                f" {READ}, e.g. from `dueflow tokens create --user {token.client_id} --scope"
                f" {READ}`."
            )
        return await call_next(context)
