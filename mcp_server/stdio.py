"""The stdio transport: the MCP SDK's, except that a line it cannot read is answered with a
JSON-RPC error (as the HTTP transport answers such a body) instead of being dropped."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
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


# what stands in for a line longer than the limit: not JSON, so the SDK hands it back unread
_TOO_LONG = "\x00dueflow: line too long\n"


def unreadable_answer(problem: Exception, max_line: int = 0) -> mt.JSONRPCError:
    """The error answering a line that is not a JSON-RPC message: parse error (-32700) when it
    is not JSON the SDK reads, invalid request (-32600) otherwise, and for a line longer than
    `max_line`; with the request's id when one can be read from the line, else null."""
    errors = problem.errors(include_url=False) if isinstance(problem, ValidationError) else []
    unparsed = [error for error in errors if error["type"] == "json_invalid"]
    if unparsed and unparsed[0]["input"] == _TOO_LONG:
        code, reason = (
            mt.INVALID_REQUEST,
            (
                f"Request too large: lines over {max_line} characters are refused"
                " (DUEFLOW_MAX_REQUEST_BYTES); send less per call"
            ),
        )
        request_id = None
    elif unparsed:
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
    # an id the answer could not carry (a lone surrogate cannot be written as UTF-8) is null
    if isinstance(value, str) and _encodable(value):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class _UnownedText(io.TextIOWrapper):
    """A text layer over stdin's buffer that leaves the buffer open when it goes (as the SDK's
    own wrapper does)."""

    def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.detach()


class CappedLines:
    """Lines of text as the SDK's stdio reader takes them, none longer than `limit`: a longer
    line is read to its end and dropped (never held whole), and a marker the SDK cannot parse
    takes its place, which `unreadable_answer` answers."""

    def __init__(self, source: io.TextIOBase, limit: int) -> None:
        self._source = source
        self._limit = limit

    def __aiter__(self) -> AsyncIterator[str]:
        return self._lines()

    async def _read(self, size: int) -> str:
        # a blocking read, on a worker thread as the SDK reads stdin
        return await anyio.to_thread.run_sync(self._source.readline, size)

    async def _lines(self) -> AsyncIterator[str]:
        while line := await self._read(self._limit + 1):
            if len(line) > self._limit and not line.endswith("\n"):
                while (rest := await self._read(self._limit)) and not rest.endswith("\n"):
                    pass
                line = _TOO_LONG
            yield line


def capped_stdin(limit: int) -> CappedLines:
    """The process's stdin, read as UTF-8 lines of at most `limit` characters."""
    return CappedLines(_UnownedText(sys.stdin.buffer, encoding="utf-8", errors="replace"), limit)


async def _answer_unreadable(
    incoming: ContextReceiveStream[Incoming],
    forward: ContextSendStream[Incoming],
    write: ContextSendStream[SessionMessage],
    max_line: int,
) -> None:
    async with forward:
        async for item in incoming:
            if not isinstance(item, Exception):
                await forward.send(item)
                continue
            answer = unreadable_answer(item, max_line)
            log.info("answered an unreadable stdio line: %s", answer.error.message[:200])
            try:
                await write.send(SessionMessage(answer))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return


@asynccontextmanager
async def answering_stdio(
    max_line: int,
) -> AsyncIterator[tuple[ContextReceiveStream[Incoming], ContextSendStream[SessionMessage]]]:
    """The SDK's stdio streams on lines of at most `max_line` characters, with every unreadable
    or longer line answered on the write stream."""
    async with stdio_server(stdin=capped_stdin(max_line)) as (incoming, write):  # type: ignore[arg-type]
        forward, read = create_context_streams[Incoming](0)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(_answer_unreadable, incoming, forward, write, max_line)
            yield read, write
            tasks.cancel_scope.cancel()


async def serve_stdio(server: FastMCP, max_line: int = 1_048_576) -> None:
    """Serve `server` over stdin/stdout until end of input, as FastMCP.run_stdio_async does but
    on answering_stdio()."""
    token = set_transport("stdio")
    try:
        # fastmcp has no public way to serve given streams: this is its run_stdio_async
        async with server._lifespan_manager(), answering_stdio(max_line) as (read, write):
            low_level = server._mcp_server
            await low_level.run(read, write, low_level.create_initialization_options())
    finally:
        reset_transport(token)
