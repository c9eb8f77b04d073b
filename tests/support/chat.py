"""Running `dueflow chat` as its own process against a scripted model (tests/fakes), and reading
the tasks it left through another MCP client."""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastmcp import Client

from domain.clock import SystemClock
from tests.fakes.chat_provider import KEY, MODEL, ScriptedModel, Step
from tests.support.runtimes import embedded_runtime
from tests.support.servers import ALICE_TOKEN, child_env, dueflow_command, serving
from tests.support.tools import call, server_for

USER = "alice"
ZONE = "Europe/Berlin"
RUN_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Finished:
    status: int
    stdout: str
    stderr: str


def chat_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    """What a person's shell would hold: the provider's key and endpoint, Dueflow's user and zone,
    a data directory of its own, and alice's token for a server reached by URL."""
    settings = {
        "OPENROUTER_API_KEY": KEY,
        "DUEFLOW_CHAT_BASE_URL": base_url,
        "DUEFLOW_CHAT_MODEL": MODEL,
        "DUEFLOW_USER": USER,
        "DUEFLOW_TIMEZONE": ZONE,
        "DUEFLOW_DATA_DIR": str(home / "data"),
        "DUEFLOW_CHAT_TOKEN": ALICE_TOKEN,  # read only with --url
    }
    return child_env(home, **{**settings, **extra})


@asynccontextmanager
async def provider(*steps: Step, key: str = KEY) -> AsyncIterator[tuple[ScriptedModel, str]]:
    """The scripted model served on a free port; yields it and its base URL (…/v1)."""
    model = ScriptedModel(*steps, key=key)
    async with serving(model.app()) as base:
        yield model, f"{base}/v1"


async def run_chat(home: Path, base_url: str, *args: str, stdin: str = "", **env: str) -> Finished:
    """`dueflow chat ARGS` to its end, with `stdin` as the person's typing."""
    proc = await asyncio.create_subprocess_exec(
        *dueflow_command("chat", *args),
        env=chat_env(home, base_url, **env),
        cwd=home,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), RUN_SECONDS)
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())


class Session:
    """A `dueflow chat` session the test types into line by line and interrupts."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stdout = ""
        self.stderr = ""

    async def type(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(f"{line}\n".encode())
        await self.proc.stdin.drain()

    async def read_until(self, text: str) -> None:
        """Read stdout until it holds `text` (counting from the session's start)."""
        assert self.proc.stdout is not None
        self.stdout = await _until(self.proc.stdout, self.stdout, text)

    async def notice_until(self, text: str) -> None:
        """Read stderr until it holds `text` (counting from the session's start)."""
        assert self.proc.stderr is not None
        self.stderr = await _until(self.proc.stderr, self.stderr, text)

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)

    async def finish(self) -> Finished:
        out, err = await asyncio.wait_for(self.proc.communicate(), RUN_SECONDS)
        assert self.proc.returncode is not None
        return Finished(
            self.proc.returncode, self.stdout + out.decode(), self.stderr + err.decode()
        )


async def _until(stream: asyncio.StreamReader, held: str, text: str) -> str:
    async def more(held: str) -> str:
        while text not in held:
            chunk = await stream.read(4096)
            assert chunk, f"the stream ended before {text!r}; it held {held!r}"
            held += chunk.decode()
        return held

    return await asyncio.wait_for(more(held), RUN_SECONDS)


@asynccontextmanager
async def session(home: Path, base_url: str, *args: str) -> AsyncIterator[Session]:
    proc = await asyncio.create_subprocess_exec(
        *dueflow_command("chat", *args),
        env=chat_env(home, base_url),
        cwd=home,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield Session(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def tasks_at(url: str, token: str, **filters: Any) -> list[dict[str, Any]]:
    """The tasks `list_tasks` answers the token's user on the server at `url`."""
    async with Client(url, auth=token) as client:
        page = await call(client, "list_tasks", **filters)
    tasks: list[dict[str, Any]] = page["tasks"]
    return tasks


async def tasks_left(home: Path, **filters: Any) -> list[dict[str, Any]]:
    """The user's tasks in the database the chat's server used, through another MCP client."""
    url = f"sqlite+aiosqlite:///{home / 'data' / 'dueflow.db'}"
    runtime = await embedded_runtime(url, home / "data", SystemClock())
    try:
        async with Client(server_for(runtime, USER)) as client:
            page = await call(client, "list_tasks", **filters)
    finally:
        await runtime.close()
    tasks: list[dict[str, Any]] = page["tasks"]
    return tasks


def today_in_zone() -> dt.date:
    return dt.datetime.now(ZoneInfo(ZONE)).date()
