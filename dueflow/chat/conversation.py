"""One chat session: the messages so far, and the turn loop — ask the model, run the tools it
calls (asking the person first for destructive ones), feed the results back, until it answers."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import zoneinfo
from collections.abc import Callable
from typing import Any, Protocol

from dueflow.chat.provider import Provider, Reply, ToolCall
from dueflow.chat.toolbox import Toolbox, ToolOutcome

MAX_STEPS = 16  # model requests in one turn, so a model that loops on tools stops
ARGUMENT_CHARACTERS = 40
CALL_CHARACTERS = 120

PREAMBLE = (
    "You are Dueflow's assistant in a terminal chat. You keep the person's tasks with the"
    " Dueflow tools: add, find, change, complete and delete tasks, reminders and recurrence."
    " Act through the tools, never pretend a change was made; after a change, say briefly what"
    " the tool answered (title, due date, priority). When a tool refuses, read its 'Fix:' and"
    " try again with corrected arguments. Find a task's id with list_tasks before changing it."
    " Keep answers short; plain text, no tables."
)


class Console(Protocol):
    """What the conversation shows the person and asks of them."""

    def text(self, chunk: str) -> None: ...

    def end_text(self) -> None: ...

    def tool(self, call: str, outcome: ToolOutcome) -> None: ...

    def notice(self, message: str) -> None: ...

    async def confirm(self, question: str) -> bool: ...


class Conversation:
    """The session's messages and the loop of one turn."""

    def __init__(
        self,
        provider: Provider,
        toolbox: Toolbox,
        console: Console,
        zone: str,
        *,
        allow_destructive: bool,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self._provider = provider
        self._toolbox = toolbox
        self._console = console
        self._zone = zone
        self._allow_destructive = allow_destructive
        self._now = now
        self.messages: list[dict[str, Any]] = []

    def system_prompt(self) -> str:
        """The preamble, the moment and zone the person is in, and the server's instructions."""
        local = self._now().astimezone(zoneinfo.ZoneInfo(self._zone))
        offset = local.strftime("%z")
        moment = (
            f"It is now {local:%A %Y-%m-%d %H:%M} in the person's time zone {self._zone}"
            f" (UTC{offset[:3]}:{offset[3:]}); read 'today', 'tomorrow' and times of day there."
        )
        return "\n\n".join(filter(None, [PREAMBLE, moment, self._toolbox.instructions]))

    async def turn(self, said: str) -> None:
        """Answer what the person said, calling tools as the model asks. Cancelling it (Ctrl-C)
        keeps what was done so far, so the next turn knows of it."""
        system = {"role": "system", "content": self.system_prompt()}
        if self.messages and self.messages[0]["role"] == "system":
            self.messages[0] = system  # the clock moved on since the last turn
        else:
            self.messages.insert(0, system)
        self.messages.append({"role": "user", "content": said})
        for _ in range(MAX_STEPS):
            reply = await self._step()
            if not reply.tool_calls:
                return
            await self._run(reply.tool_calls)
        self._console.notice(
            f"stopped: the model called tools {MAX_STEPS} times without answering; ask again"
        )

    async def _step(self) -> Reply:
        streamed: list[str] = []

        def on_text(chunk: str) -> None:
            if not chunk:
                return
            streamed.append(chunk)
            self._console.text(chunk)

        try:
            reply = await self._provider.reply(self.messages, self._toolbox.functions(), on_text)
        except asyncio.CancelledError:
            if streamed:
                self.messages.append(
                    {"role": "assistant", "content": "".join(streamed) + " [stopped by the person]"}
                )
            raise
        finally:
            if streamed:
                self._console.end_text()
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in reply.tool_calls
            ]
        self.messages.append(message)
        return reply

    async def _run(self, calls: list[ToolCall]) -> None:
        answered: set[str] = set()
        try:
            for call in calls:
                outcome = await self._outcome(call)
                self._console.tool(shown(call), outcome)
                self.messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": outcome.for_model}
                )
                answered.add(call.id)
        finally:
            # every call the model made gets an answer, or the next request is malformed
            for call in calls:
                if call.id not in answered:
                    self.messages.append(
                        {
                            "role": "tool",
                            "tool_call_id": call.id,
                            "content": "Not run to the end: the person stopped the turn. Check"
                            " the task's state before assuming either way.",
                        }
                    )

    async def _outcome(self, call: ToolCall) -> ToolOutcome:
        if self._toolbox.destructive(call.name) and not self._allow_destructive:
            allowed = await self._console.confirm(f"Allow {shown(call)}?")
            if not allowed:
                text = (
                    f"The person refused this {call.name} call; nothing was changed. Do not"
                    " retry it unless they ask again."
                )
                return ToolOutcome(text, "refused by you; nothing changed", is_error=True)
        return await self._toolbox.call(call.name, call.arguments)


def shown(call: ToolCall) -> str:
    """A call as one short line: the tool and its arguments, long values cut."""
    try:
        arguments = json.loads(call.arguments or "{}")
    except json.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        return f"{call.name}({_cut(call.arguments, ARGUMENT_CHARACTERS)})"
    parts = [
        f"{name}={_cut(json.dumps(value, ensure_ascii=False), ARGUMENT_CHARACTERS)}"
        for name, value in arguments.items()
        if value is not None
    ]
    return _cut(f"{call.name}({', '.join(parts)})", CALL_CHARACTERS)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
