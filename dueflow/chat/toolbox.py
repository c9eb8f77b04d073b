"""Dueflow's MCP tools as the chat's model sees them: one MCP client session, to a `dueflow
serve` the chat spawns over stdio or to a server it reaches by URL (streamable HTTP)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
import mcp_types as mt
from fastmcp import Client
from fastmcp.client.transports import StdioTransport, StreamableHttpTransport

from dueflow.chat.settings import KEY_VARIABLES, ChatSetupError

SUMMARY_CHARACTERS = 160
STDERR_LINES = 8


class ServerLost(Exception):
    """The MCP connection to Dueflow failed during the session."""


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """A tool's answer: what the model is given, and the one line the person sees."""

    for_model: str
    summary: str
    is_error: bool


class Toolbox:
    """The server's tools, offered to the model as functions and called through `client`."""

    def __init__(self, client: Client[Any], tools: list[mt.Tool]) -> None:
        self._client = client
        self._tools = {tool.name: tool for tool in tools}

    @property
    def instructions(self) -> str:
        """What the server tells every client in its handshake (today's date, the zone, ...)."""
        return self._client.instructions or ""

    def functions(self) -> list[dict[str, Any]]:
        """The tools in the chat-completions `tools` form."""
        return [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description or tool.name,
                    "parameters": tool.input_schema,
                },
            }
            for tool in self._tools.values()
        ]

    def destructive(self, name: str) -> bool:
        """Whether the tool says it may destroy data (MCP's defaults: a tool that is not
        read-only is destructive unless it says otherwise)."""
        tool = self._tools.get(name)
        if tool is None:
            return False
        hints = tool.annotations
        if hints is None:
            return True
        return not hints.read_only_hint and hints.destructive_hint is not False

    async def call(self, name: str, arguments: str) -> ToolOutcome:
        """Call tool `name` with the model's JSON `arguments`; a refusal is an outcome too."""
        try:
            parsed = json.loads(arguments or "{}")
        except json.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            text = (
                "arguments: is not a JSON object. Fix: send the tool's arguments as one JSON"
                ' object, e.g. {"title": "Buy milk"}.'
            )
            return ToolOutcome(f"Error: {text}", text, is_error=True)
        try:
            result = await self._client.call_tool(name, parsed, raise_on_error=False)
        except Exception as exc:
            raise ServerLost(f"the call to {name} failed: {_reason(exc)}") from exc
        text = "\n".join(
            block.text for block in result.content if isinstance(block, mt.TextContent)
        )
        summary = _one_line(text) or ("(no answer)" if not result.is_error else "(refused)")
        if result.is_error:
            return ToolOutcome(f"Error: {text}", summary, is_error=True)
        for_model = text
        if result.structured_content is not None:
            for_model += "\n" + json.dumps(result.structured_content, ensure_ascii=False)
        return ToolOutcome(for_model, summary, is_error=False)


@asynccontextmanager
async def connected(
    url: str | None, token: str | None, env: Mapping[str, str] | None = None
) -> AsyncIterator[Toolbox]:
    """A toolbox on `url` with the bearer `token`, or on a `dueflow serve` spawned over stdio
    with the caller's environment (less the provider's key); closed on leaving."""
    with tempfile.TemporaryFile("w+", encoding="utf-8") as server_log:
        async with AsyncExitStack() as stack:
            client = _client(url, token, env, server_log)
            try:
                await stack.enter_async_context(client)
                tools = await client.list_tools()
            except Exception as exc:
                status = await _status_of(url, token) if url is not None else None
                raise ChatSetupError(_unreachable(url, token, exc, server_log, status)) from None
            yield Toolbox(client, tools)


def _client(
    url: str | None, token: str | None, env: Mapping[str, str] | None, server_log: TextIO
) -> Client[Any]:
    if url is not None:
        return Client(StreamableHttpTransport(url, auth=token), init_timeout=15)
    child = {
        k: v for k, v in (os.environ if env is None else env).items() if k not in KEY_VARIABLES
    }
    # the server's routine start-up lines would interleave with the chat; its warnings stay
    child.setdefault("DUEFLOW_LOG_LEVEL", "WARNING")
    transport = StdioTransport(
        sys.executable,
        ["-m", "dueflow", "serve"],
        env=child,
        keep_alive=False,
        log_file=server_log,
    )
    return Client(transport, init_timeout=30)


async def _status_of(url: str, token: str | None) -> int | None:
    """The HTTP status `url` answers an empty MCP POST with the token: the MCP client's error
    does not say whether the server refused the token or failed otherwise."""
    headers = {"Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            return (await http.post(url, headers=headers, json={})).status_code
    except httpx.HTTPError:
        return None


def _unreachable(
    url: str | None, token: str | None, exc: BaseException, log: TextIO, status: int | None
) -> str:
    reason = _reason(exc)
    if url is None:
        log.flush()
        log.seek(0)
        tail = " | ".join(line.strip() for line in log.read().splitlines()[-STDERR_LINES:])
        return (
            f"could not start `dueflow serve` over stdio: {tail or reason}. Fix: run"
            " `dueflow serve` alone to see the problem (its settings are the DUEFLOW_* variables)."
        )
    if status == 401:
        fix = (
            "set DUEFLOW_CHAT_TOKEN to a token of `dueflow tokens create --user NAME`"
            if token is None
            else "DUEFLOW_CHAT_TOKEN was refused; create a new one with `dueflow tokens create`"
        )
        return f"the Dueflow server at {url} refused the connection (401 Unauthorized). Fix: {fix}."
    if status is not None and status >= 400:
        return (
            f"the server at {url} answered HTTP {status} ({reason}). Fix: check --url: a"
            " Dueflow server's MCP endpoint is http(s)://HOST:PORT/mcp."
        )
    return (
        f"cannot reach the Dueflow server at {url}: {reason}. Fix: start it with `dueflow serve"
        " --transport http` or check --url (it ends in /mcp)."
    )


def _reason(exc: BaseException) -> str:
    """The innermost readable cause of `exc`, in one line."""
    while True:
        if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        elif exc.__cause__ is not None and not str(exc):
            exc = exc.__cause__
        else:
            break
    return _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    if len(line) <= SUMMARY_CHARACTERS:
        return line
    return line[: SUMMARY_CHARACTERS - 3] + "..."
