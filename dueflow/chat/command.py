"""`dueflow chat`: its arguments, and the session — connect to Dueflow over MCP, then take the
person's lines (or one `--once` text) turn by turn. Ctrl-C stops the running turn; a second
Ctrl-C before the next line quits."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dueflow.chat.conversation import Conversation
    from dueflow.chat.settings import ChatSettings
    from dueflow.chat.terminal import Terminal

QUIT = 130  # the status of a process ended by Ctrl-C
PROMPT = "you> "


HELP = (
    "chat about your tasks with a model (OpenRouter or any OpenAI-compatible endpoint) that"
    " works through Dueflow's MCP tools"
)


def add_chat_command(commands: Any) -> None:
    """Add `chat` to the `dueflow` command's subcommands."""
    _arguments(commands.add_parser("chat", help=HELP, description=HELP))


def main(argv: list[str]) -> int:
    """`dueflow chat ARGV`, parsed here: the console script comes here straight away, so the
    chat, a client of the server, loads none of the server's code."""
    chat = argparse.ArgumentParser(prog="dueflow chat", description=HELP)
    _arguments(chat)
    return run_chat(chat.parse_args(argv))


def _arguments(chat: argparse.ArgumentParser) -> None:
    chat.add_argument(
        "--once", metavar="TEXT", help="say TEXT, print the answer and exit (for scripts)"
    )
    chat.add_argument(
        "--yes",
        action="store_true",
        help="run destructive tools (delete_task, ...) without asking first",
    )
    chat.add_argument(
        "--url",
        help="a running server's MCP endpoint (streamable HTTP), e.g. http://127.0.0.1:8000/mcp,"
        " with the bearer token of DUEFLOW_CHAT_TOKEN; default: spawn `dueflow serve` (stdio)",
    )
    chat.add_argument("--model", help="the model to ask (default: DUEFLOW_CHAT_MODEL)")
    chat.add_argument(
        "--no-stream",
        action="store_true",
        help="ask for whole answers instead of streamed ones",
    )


def run_chat(args: argparse.Namespace) -> int:
    """Run `dueflow chat` with its parsed arguments; the process's exit status."""
    from dueflow.chat.settings import ChatSettings, ChatSetupError

    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="dueflow chat: %(name)s: %(message)s"
    )
    try:
        settings = ChatSettings.from_env()
    except ChatSetupError as exc:
        print(f"dueflow chat: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    if args.model:
        settings = replace(settings, model=args.model.strip())
    try:
        return asyncio.run(_chat(args, settings))
    except KeyboardInterrupt:
        return QUIT


async def _chat(args: argparse.Namespace, settings: ChatSettings) -> int:
    from dueflow.chat.conversation import Conversation
    from dueflow.chat.provider import Provider
    from dueflow.chat.settings import ChatSetupError
    from dueflow.chat.terminal import Terminal
    from dueflow.chat.toolbox import connected

    terminal = Terminal()
    interrupts = Interrupts(terminal)
    interrupts.install()
    provider = Provider(settings, stream=not args.no_stream, notice=terminal.notice)
    try:
        async with connected(args.url, settings.token) as toolbox:
            conversation = Conversation(
                provider, toolbox, terminal, settings.timezone, allow_destructive=args.yes
            )
            if args.once is not None:
                return await _turn(conversation, args.once, terminal, interrupts, once=True)
            terminal.notice(
                f"{settings.model} at {settings.base_url}, {len(toolbox.functions())} Dueflow"
                " tools. Ctrl-C stops an answer, twice quits; Ctrl-D ends."
            )
            return await _session(conversation, terminal, interrupts)
    except ChatSetupError as exc:
        terminal.notice(str(exc))
        return 2
    finally:
        await provider.close()


async def _session(conversation: Conversation, terminal: Terminal, interrupts: Interrupts) -> int:
    while True:
        reading = asyncio.ensure_future(terminal.read_line(PROMPT))
        quitting = asyncio.ensure_future(interrupts.quit.wait())
        await asyncio.wait({reading, quitting}, return_when=asyncio.FIRST_COMPLETED)
        quitting.cancel()
        if interrupts.quit.is_set():
            reading.cancel()
            return QUIT
        line = reading.result()
        if line is None:
            return 0
        if not line.strip():
            continue
        interrupts.disarm()
        status = await _turn(conversation, line, terminal, interrupts, once=False)
        if status:
            return status


async def _turn(
    conversation: Conversation,
    said: str,
    terminal: Terminal,
    interrupts: Interrupts,
    *,
    once: bool,
) -> int:
    """One turn; 0 when it is answered (or, in a session, failed in a way the next may not)."""
    from dueflow.chat.provider import ProviderError
    from dueflow.chat.toolbox import ServerLost

    turn = asyncio.ensure_future(conversation.turn(said))
    interrupts.turn = turn
    try:
        await asyncio.wait({turn})
    finally:
        interrupts.turn = None
    if turn.cancelled():
        if once or interrupts.quit.is_set():
            return QUIT
        terminal.notice("stopped. Ctrl-C again quits.")
        return 0
    error = turn.exception()
    if error is None:
        return 0
    if isinstance(error, ProviderError):
        terminal.notice(str(error))
        if error.fatal:
            return 2
        return 1 if once else 0
    if isinstance(error, ServerLost):
        terminal.notice(f"lost the Dueflow server: {error}")
        return 2
    raise error


class Interrupts:
    """Ctrl-C: the first stops the running turn, or at the prompt says how to quit; a second
    one before the person's next line quits."""

    def __init__(self, terminal: Terminal) -> None:
        self._terminal = terminal
        self.quit = asyncio.Event()
        self.turn: asyncio.Future[None] | None = None
        self._armed = False

    def install(self) -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._interrupted)

    def disarm(self) -> None:
        self._armed = False

    def _interrupted(self) -> None:
        if self._armed:
            self.quit.set()
            if self.turn is not None:
                self.turn.cancel()
            return
        self._armed = True
        if self.turn is not None and not self.turn.done():
            self.turn.cancel()
        else:
            self._terminal.notice("Ctrl-C again quits (or Ctrl-D).")
