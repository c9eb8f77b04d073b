"""What every tool module shares: annotations, error translation, answers, correlation ids."""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, ParamSpec

import mcp_types as mt
from fastmcp.exceptions import FastMCPError, NotFoundError, ToolError, ValidationError
from fastmcp.server.middleware import CallNext, Middleware, MiddlewareContext
from fastmcp.tools import Tool, ToolResult
from mcp import MCPError
from pydantic import BaseModel
from pydantic import ValidationError as ArgumentErrors

from domain.adapters.sql import busy
from domain.adapters.tracing import set_correlation
from domain.errors import Busy, DueflowError
from mcp_server.refusals import argument_refusal, internal_error, lone_surrogate, unknown_tool

P = ParamSpec("P")

# The hints the spec leaves at their defaults are left out (readOnlyHint false, idempotentHint
# false; the others mean nothing on a read-only tool), except destructiveHint, which defaults
# to true: every tool says it, so a client that confirms destructive calls asks only for those.
READ = mt.ToolAnnotations(read_only_hint=True, destructive_hint=False)
WRITE = mt.ToolAnnotations(destructive_hint=False)
IDEMPOTENT_WRITE = mt.ToolAnnotations(destructive_hint=False, idempotent_hint=True)
DESTRUCTIVE = mt.ToolAnnotations(destructive_hint=True, idempotent_hint=True)


log = logging.getLogger("dueflow.mcp")


class InternalError(ToolError):
    """A failure no refusal explains, answered with the masked internal-error text."""


class UnknownTool(ToolError):
    """A call to a tool this server does not have."""


def domain_errors(tool: Callable[P, Awaitable[ToolResult]]) -> Callable[P, Awaitable[ToolResult]]:
    """Turn a refusal of the domain into a tool error whose text says what to fix, and any other
    failure into the masked internal error, logged once with its traceback."""

    @functools.wraps(tool)
    async def call(*args: P.args, **kwargs: P.kwargs) -> ToolResult:
        try:
            return await tool(*args, **kwargs)
        except DueflowError as exc:
            raise ToolError(exc.message, log_level=logging.INFO) from None
        except (FastMCPError, MCPError):
            raise
        except Exception as exc:
            if busy(exc):  # a transient state of the database, not a failure: say so
                log.warning("%s refused: the database stayed busy with other writes", tool.__name__)
                raise ToolError(Busy().message, log_level=logging.INFO) from None
            # logged here, so fastmcp's own record (a few frames) does not repeat it
            raise InternalError(
                internal_error(tool.__name__, exc), log_level=logging.DEBUG
            ) from None

    return call


class Answer(ToolResult):
    """A ToolResult of a text summary and a document that is JSON already.

    ToolResult's own constructor re-serializes structured content through pydantic, value by
    value, whatever it is: for a 50-task page of plain strings, numbers and lists that was a
    tenth of the call. Like fastmcp's InputRequiredToolResult, this sets the fields itself."""

    def __init__(self, summary: str, document: dict[str, Any]) -> None:
        BaseModel.__init__(
            self,
            content=[mt.TextContent(type="text", text=summary)],
            structured_content=document,
            meta=None,
            is_error=False,
        )


def answer(summary: str, result: BaseModel | dict[str, Any]) -> ToolResult:
    """A one-line text summary plus the structured result (the tool's outputSchema). A dict
    must hold JSON values only (str, int, float, bool, None, lists and dicts of them)."""
    document = result.model_dump(mode="json") if isinstance(result, BaseModel) else result
    return Answer(summary, document)


def correlation() -> str:
    """A fresh correlation id for the events of one tool call, named by the log lines the rest
    of the call writes."""
    correlation_id = str(uuid.uuid4())
    set_correlation(correlation_id)
    return correlation_id


class Refusals(Middleware):
    """Answers every refused call in the one style, `<field>: <problem>. Fix: <what to send>.`:
    arguments the tool's input schema refused, a tool this server lacks, and failures no tool
    caught (logged, their details masked)."""

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        name = context.message.name
        surrogate = lone_surrogate(context.message.arguments or {})
        if surrogate is not None:
            raise ToolError(surrogate, log_level=logging.INFO)
        try:
            return await call_next(context)
        except ValidationError as exc:
            if not isinstance(exc.__cause__, ArgumentErrors):
                raise
            server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
            tool = await server.get_tool(name) if server is not None else None
            schema = tool.parameters if tool is not None else {}
            refusal = argument_refusal(exc.__cause__, name, schema)
            raise ToolError(refusal, log_level=logging.INFO) from None
        except NotFoundError:
            server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
            tools = [tool.name for tool in await server.list_tools()] if server else []
            raise UnknownTool(unknown_tool(name, tools), log_level=logging.INFO) from None
        except ToolError as exc:
            # fastmcp masks what a tool raised as "Error calling tool" and keeps it as the cause
            cause = exc.__cause__
            if cause is None or isinstance(cause, FastMCPError | MCPError):
                raise
            raise InternalError(internal_error(name, cause)) from None
        except (FastMCPError, MCPError):
            raise
        except Exception as exc:
            raise InternalError(internal_error(name, exc)) from None


_SENT: ContextVar[frozenset[str]] = ContextVar("dueflow_sent_arguments", default=frozenset())


class SentArguments(Middleware):
    """Remembers which arguments a call carried, so update_task can tell null from absent."""

    async def on_call_tool(
        self,
        context: MiddlewareContext[mt.CallToolRequestParams],
        call_next: CallNext[mt.CallToolRequestParams, ToolResult],
    ) -> ToolResult:
        token = _SENT.set(frozenset(context.message.arguments or {}))
        try:
            return await call_next(context)
        finally:
            _SENT.reset(token)


class ReadOnlyTools:
    """Whether a called tool is read-only (its readOnlyHint), looked up once per tool: the tools
    are fixed once the server is built, and a lookup runs fastmcp's whole provider chain."""

    def __init__(self) -> None:
        self._reads: dict[str, bool] = {}  # only tools that exist: a forged name is not kept

    async def reads_only(self, context: MiddlewareContext[Any]) -> bool | None:
        """True or False for the tool `context` calls; None if the server has no such tool."""
        name = context.message.name
        if name not in self._reads:
            server = context.fastmcp_context.fastmcp if context.fastmcp_context else None
            tool = await server.get_tool(name) if server is not None else None
            if tool is None:
                return None
            hints = tool.annotations
            self._reads[name] = hints is not None and bool(hints.read_only_hint)
        return self._reads[name]


def sent_arguments() -> frozenset[str]:
    """The names of the arguments the current tool call carried."""
    return _SENT.get()


class LeanListing(Middleware):
    """Lists each tool as a model reads it, without bytes that say nothing: one line of
    description (a docstring's line breaks are not news), no `default: null` on an argument
    whose absence already says "not given", and no `additionalProperties: false` (an argument
    a tool lacks is refused all the same, naming the ones it takes)."""

    async def on_list_tools(
        self,
        context: MiddlewareContext[mt.ListToolsRequest],
        call_next: CallNext[mt.ListToolsRequest, Sequence[Tool]],
    ) -> Sequence[Tool]:
        return [lean(tool) for tool in await call_next(context)]


def lean(tool: Tool) -> Tool:
    """`tool` as LeanListing lists it."""
    properties = {
        name: {key: value for key, value in schema.items() if key != "default" or value is not None}
        for name, schema in tool.parameters.get("properties", {}).items()
    }
    parameters = {
        key: value
        for key, value in {**tool.parameters, "properties": properties}.items()
        if key != "additionalProperties"
    }
    description = " ".join((tool.description or "").split())
    return tool.model_copy(update={"parameters": parameters, "description": description})
