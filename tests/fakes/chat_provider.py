"""A local OpenAI-compatible chat-completions endpoint with a scripted model, for `dueflow chat`.

Each POST to /v1/chat/completions takes the next step of the script and records the request. A
step answers text (`Say`), tool calls (`Call`), an HTTP error (`Fail`), or starts to stream and
then never ends (`Stall`, for Ctrl-C). A request asking `stream: true` gets server-sent events
the way OpenAI streams them (text and tool-call arguments in several chunks, then `[DONE]`); one
that does not gets a whole chat completion. The bearer key is checked first: a wrong one answers
401 with OpenAI's error body. A request past the end of the script answers 500, so a test that
expected fewer requests fails visibly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

KEY = "sk-or-test-0123456789"
MODEL = "scripted/model"


@dataclass(frozen=True, slots=True)
class Say:
    text: str


@dataclass(frozen=True, slots=True)
class Call:
    """Tool calls, as (name, arguments) pairs; arguments as a dict or raw JSON text."""

    calls: tuple[tuple[str, dict[str, Any] | str], ...]

    @classmethod
    def one(cls, name: str, **arguments: Any) -> Call:
        return cls(((name, arguments),))


@dataclass(frozen=True, slots=True)
class Fail:
    status: int
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stall:
    """Stream `text`, then hold the response open until the client goes away."""

    text: str


Step = Say | Call | Fail | Stall


class ScriptedModel:
    """The script, and every request the endpoint received (JSON bodies, in order)."""

    def __init__(self, *steps: Step, key: str = KEY) -> None:
        self._steps = list(steps)
        self._key = key
        self.requests: list[dict[str, Any]] = []
        self._calls = 0

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/v1/chat/completions", self._complete, methods=["POST"])])

    @property
    def left(self) -> int:
        """Steps not yet taken."""
        return len(self._steps)

    async def _complete(self, request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {self._key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        body = await request.json()
        self.requests.append(body)
        if not self._steps:
            return _error(500, "the fake's script has no more steps", "script_ended")
        step = self._steps.pop(0)
        if isinstance(step, Fail):
            return _error(step.status, step.message, None, step.headers)
        if isinstance(step, Stall):
            return StreamingResponse(self._stall(step.text), media_type="text/event-stream")
        message = self._message(step)
        if body.get("stream"):
            return StreamingResponse(self._chunks(message), media_type="text/event-stream")
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        return JSONResponse(
            {
                **_envelope("chat.completion"),
                "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
        )

    def _message(self, step: Say | Call) -> dict[str, Any]:
        if isinstance(step, Say):
            return {"role": "assistant", "content": step.text}
        calls = []
        for name, arguments in step.calls:
            self._calls += 1
            text = arguments if isinstance(arguments, str) else json.dumps(arguments)
            calls.append(
                {
                    "id": f"call_{self._calls}",
                    "type": "function",
                    "function": {"name": name, "arguments": text},
                }
            )
        return {"role": "assistant", "content": None, "tool_calls": calls}

    async def _chunks(self, message: dict[str, Any]) -> AsyncIterator[str]:
        yield _event({"role": "assistant", "content": ""})
        text = message.get("content") or ""
        for start in range(0, len(text), 7):
            yield _event({"content": text[start : start + 7]})
        for index, call in enumerate(message.get("tool_calls") or []):
            function = call["function"]
            yield _event(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": function["name"], "arguments": ""},
                        }
                    ]
                }
            )
            arguments = function["arguments"]
            for start in range(0, len(arguments), 9):
                piece = arguments[start : start + 9]
                yield _event({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        yield _event({}, finish)
        yield "data: [DONE]\n\n"

    async def _stall(self, text: str) -> AsyncIterator[str]:
        yield _event({"role": "assistant", "content": text})
        await asyncio.Event().wait()


def _envelope(kind: str) -> dict[str, Any]:
    return {"id": "chatcmpl-fake", "object": kind, "created": int(time.time()), "model": MODEL}


def _event(delta: dict[str, Any], finish: str | None = None) -> str:
    chunk = {
        **_envelope("chat.completion.chunk"),
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n"


def _error(
    status: int, message: str, code: str | None, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)
