"""What every tool module shares: annotations, error translation, answers, correlation ids."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

import mcp_types as mt
from fastmcp.exceptions import ToolError
from fastmcp.tools import ToolResult
from pydantic import BaseModel

from domain.errors import DueflowError

P = ParamSpec("P")

READ = mt.ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
WRITE = mt.ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
IDEMPOTENT_WRITE = mt.ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True
)
DESTRUCTIVE = mt.ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)


def domain_errors(tool: Callable[P, Awaitable[ToolResult]]) -> Callable[P, Awaitable[ToolResult]]:
    """Turn a refusal of the domain into a tool error whose text says what to fix."""

    @functools.wraps(tool)
    async def call(*args: P.args, **kwargs: P.kwargs) -> ToolResult:
        try:
            return await tool(*args, **kwargs)
        except DueflowError as exc:
            raise ToolError(exc.message) from None

    return call


def answer(summary: str, result: BaseModel | dict[str, Any]) -> ToolResult:
    """A one-line text summary plus the structured result (the tool's outputSchema)."""
    return ToolResult(content=summary, structured_content=result)


def correlation() -> str:
    """A fresh correlation id for the events of one tool call."""
    return str(uuid.uuid4())
