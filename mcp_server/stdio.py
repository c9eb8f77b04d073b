"""The stdio transport: the MCP SDK's, except that a line it cannot read is answered with a
JSON-RPC error (as the HTTP transport answers such a body) instead of being dropped."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import mcp_types as mt
from fastmcp import FastMCP
from fastmcp.server.context import reset_transport, set_transport
from mcp.server.stdio import stdio_server
from mcp.shared._context_streams import (
    ContextReceiveStream,
    ContextSendStream,
    create_context_streams,
)
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

log = logging.getLogger(__name__)

Incoming = SessionMessage | Exception


def unreadable_answer(problem: Exception) -> mt.JSONRPCError:
    """The error answering a line that is not a JSON-RPC message: parse error (-32700) when it
    is not JSON the SDK reads, invalid request (-32600) otherwise; with the request's id when
    one can be read from the line, else null."""
    errors = problem.errors(include_url=False) if isinstance(problem, ValidationError) else []
    unparsed = [error for error in errors if error["type"] == "json_invalid"]
    if unparsed:
        code, reason = mt.PARSE_ERROR, f"Parse error: {unparsed[0]['msg']}"
        request_id = _id_of_text(unparsed[0]["input"])
    else:
        code, reason = mt.INVALID_REQUEST, "Invalid request: not a JSON-RPC 2.0 message"
        request_id = _id_of_message(errors)
    return mt.JSONRPCError(
        jsonrpc="2.0", id=request_id, error=mt.ErrorData(code=code, message=reason)
    )


def _id_of_text(line: Any) -> mt.RequestId | None:
    # Python's parser reads what the SDK's refuses (lone surrogates, deep nesting), so the
    # client waiting on that id is answered; anything it cannot read either answers id null.
    if not isinstance(line, str):
        return None
    try:
        message = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return _valid_id(message.get("id")) if isinstance(message, dict) else None


def _id_of_message(errors: Any) -> mt.RequestId | None:
    # a field missing from the top-level object reports that object as its input
    for error in errors:
        if (
            error["type"] == "missing"
            and len(error["loc"]) == 2
            and isinstance(error["input"], dict)
        ):
            return _valid_id(error["input"].get("id"))
    return None


def _valid_id(value: Any) -> mt.RequestId | None:
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return None


async def _answer_unreadable(
    incoming: ContextReceiveStream[Incoming],
    forward: ContextSendStream[Incoming],
    write: ContextSendStream[SessionMessage],
) -> None:
    async with forward:
        async for item in incoming:
            if not isinstance(item, Exception):
                await forward.send(item)
                continue
            answer = unreadable_answer(item)
            log.info("answered an unreadable stdio line: %s", answer.error.message[:200])
            try:
                await write.send(SessionMessage(answer))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return


@asynccontextmanager
async def answering_stdio() -> AsyncIterator[
    tuple[ContextReceiveStream[Incoming], ContextSendStream[SessionMessage]]
]:
    """The SDK's stdio streams, with every unreadable line answered on the write stream."""
    async with stdio_server() as (incoming, write):
        forward, read = create_context_streams[Incoming](0)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_answer_unreadable, incoming, forward, write)
            yield read, write
            tasks.cancel_scope.cancel()


async def serve_stdio(server: FastMCP) -> None:
    """Serve `server` over stdin/stdout until end of input, as FastMCP.run_stdio_async does but
    on answering_stdio()."""
    token = set_transport("stdio")
    try:
        # fastmcp has no public way to serve given streams: this is its run_stdio_async
        async with server._lifespan_manager(), answering_stdio() as (read, write):
            low_level = server._mcp_server
            await low_level.run(read, write, low_level.create_initialization_options())
    finally:
        reset_transport(token)
