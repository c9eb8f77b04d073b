"""The person's side of the chat: lines read from the terminal (or a pipe) without blocking the
event loop, the model's words on stdout as they stream, and everything else on stderr."""

from __future__ import annotations

import asyncio
import sys
import threading
from typing import TextIO

from dueflow.chat.toolbox import ToolOutcome


class Terminal:
    """Reads lines on a daemon thread, one at a time, so a pending read never keeps the process
    alive and a read a stopped turn left waiting serves the next prompt."""

    def __init__(
        self,
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
    ) -> None:
        self._in = stdin or sys.stdin
        self._out = stdout or sys.stdout
        self._err = stderr or sys.stderr
        self.interactive = self._in.isatty()
        self._pending: asyncio.Future[str | None] | None = None
        self._midline = False
        if self.interactive:
            import readline  # noqa: F401  (line editing and history for input())

    async def read_line(self, prompt: str) -> str | None:
        """The next line the person typed (without its newline); None at end of input."""
        if self._pending is None:
            loop = asyncio.get_running_loop()
            pending: asyncio.Future[str | None] = loop.create_future()
            self._pending = pending
            threading.Thread(
                target=self._read, args=(loop, pending, prompt), daemon=True, name="chat-input"
            ).start()
        line = await asyncio.shield(self._pending)
        self._pending = None
        return line

    def _read(
        self, loop: asyncio.AbstractEventLoop, pending: asyncio.Future[str | None], prompt: str
    ) -> None:
        line: str | None
        try:
            if self.interactive:
                line = input(prompt)
            else:
                read = self._in.readline()
                line = read.rstrip("\n") if read else None
        except (EOFError, OSError, ValueError):
            line = None
        loop.call_soon_threadsafe(_settle, pending, line)

    def text(self, chunk: str) -> None:
        self._out.write(chunk)
        self._out.flush()
        self._midline = not chunk.endswith("\n")

    def end_text(self) -> None:
        if self._midline:
            self._out.write("\n")
            self._out.flush()
            self._midline = False

    def tool(self, call: str, outcome: ToolOutcome) -> None:
        mark = "x" if outcome.is_error else "ok"
        self._line(f"  > {call} -> {mark}: {outcome.summary}")

    def notice(self, message: str) -> None:
        self._line(f"dueflow chat: {message}")

    async def confirm(self, question: str) -> bool:
        self._line(f"{question} [y/N]")
        answer = await self.read_line("allow? ")
        return answer is not None and answer.strip().lower() in ("y", "yes")

    def _line(self, text: str) -> None:
        self.end_text()
        self._err.write(text + "\n")
        self._err.flush()


def _settle(pending: asyncio.Future[str | None], line: str | None) -> None:
    if not pending.done():
        pending.set_result(line)
