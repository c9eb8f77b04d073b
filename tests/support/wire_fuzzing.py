"""Fuzzing the transports' framing: lines (stdio) and bodies (streamable HTTP) mutated from valid
MCP requests — cut short, spliced with hostile bytes, values swapped for hostile ones, keys
dropped or renamed, wrapped in batches — each followed by a check that the server still answers.

What every mutated message must get: on stdio, only JSON-RPC lines on stdout and a prompt answer
to the `ping` sent after it; over HTTP, a status below 500 whose body (if any) is JSON-RPC or an
OAuth error. Neither may answer an internal error (-32603, or a tool's masked `internal error`).
The CI sample (tests/fuzz/test_wire_fuzz.py) and the long run (tests/bench/bench_wire_fuzz.py)
share this module."""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.support.servers import (
    ALICE_TOKEN,
    INITIALIZE,
    dueflow_http,
    free_port,
    stdio_session,
)

INTERNAL_ERROR = -32603
# valid messages of a session, as a client sends them; the mutations start from these
VALID: list[dict[str, Any]] = [
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "ping"},
    {
        "jsonrpc": "2.0",
        "id": 4,
        "method": "tools/call",
        "params": {
            "name": "add_task",
            "arguments": {
                "title": "wire",
                "due": "2026-12-24T09:00",
                "timezone": "Europe/Berlin",
                "tags": ["home"],
                "reminders": ["PT15M"],
                "recurrence": "every week",
            },
        },
    },
    {
        "jsonrpc": "2.0",
        "id": "five",
        "method": "tools/call",
        "params": {"name": "list_tasks", "arguments": {"status": "all", "limit": 5}},
    },
    {
        "jsonrpc": "2.0",
        "id": 6,
        "method": "tools/call",
        "params": {"name": "list_tasks", "arguments": {"sort": ["urgency", "due:desc"]}},
    },
    {
        "jsonrpc": "2.0",
        "id": 7,
        "method": "tools/call",
        "params": {"name": "preview_recurrence", "arguments": {"rule": "FREQ=DAILY;COUNT=3"}},
    },
    {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 4}},
    {"jsonrpc": "2.0", "id": 8, "method": "resources/list"},
    {"jsonrpc": "2.0", "id": 9, "method": "prompts/list"},
    {"jsonrpc": "2.0", "id": 10, "method": "logging/setLevel", "params": {"level": "debug"}},
]
# bytes spliced into a message's text
FRAGMENTS = [
    b"\x00",
    b"\\u0000",
    b"\\ud800",
    b"\xed\xa0\x80",  # a surrogate encoded as if UTF-8 allowed it
    b"\xff\xfe",
    b"\xc3",
    b"{",
    b"}",
    b"[",
    b"]",
    b'"',
    b",",
    b":",
    b"\\",
    b"1e400",
    b"-0",
    b"NaN",
    b"Infinity",
    b"null",
    b"\r",
    b"\t",
    b"[" * 300,
    b'"' + b"x" * 5_000 + b'"',
    b"\xe2\x80\xa8",  # U+2028
]


def _deep(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


# values swapped in for one of a message's values
VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**64,
    -(2**63) - 1,
    1.5,
    1e308,
    "",
    "x" * 20_000,
    "\u0000",
    "\ud7ff\ue000",
    "9999-12-31T23:59:59+14:00",
    "0001-01-01",
    "FREQ=SECONDLY;BYSECOND=" + ",".join(str(n) for n in range(60)),
    "PT9223372036854775807S",
    [],
    {},
    ["x"] * 1_000,
    {"nested": {"deeper": [1, {"x": None}]}},
    _deep(150),
    {"$ref": "#"},
]


@dataclass
class WireTally:
    """What a wire run sent and found."""

    sent: int = 0
    answers: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    error_codes: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, message: bytes, detail: str) -> None:
        self.failures.append(f"{detail} <- {message[:160]!r}")


def mutated(rng: random.Random) -> bytes:
    """One message: a valid one, mutated once or twice."""
    message = json.loads(json.dumps(rng.choice(VALID)))
    if rng.random() < 0.5:
        _swap_value(rng, message)
    text = json.dumps(message).encode()
    for _ in range(rng.choice((0, 1, 1, 2))):
        text = rng.choice(_TEXT_MUTATIONS)(rng, text)
    return text.replace(b"\n", b" ")


def _swap_value(rng: random.Random, message: dict[str, Any]) -> None:
    """Swap one value anywhere in `message` (or drop or rename its key)."""
    holders: list[dict[str, Any] | list[Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict | list):
            holders.append(node)
            for child in node.values() if isinstance(node, dict) else node:
                walk(child)

    walk(message)
    holder = rng.choice(holders)
    if isinstance(holder, list):
        if holder:
            holder[rng.randrange(len(holder))] = rng.choice(VALUES)
        return
    key = rng.choice(sorted(holder))
    action = rng.random()
    if action < 0.15:
        del holder[key]
    elif action < 0.25:
        holder[key.upper()] = holder.pop(key)
    else:
        holder[key] = rng.choice(VALUES)


def _cut(rng: random.Random, text: bytes) -> bytes:
    return text[: rng.randrange(len(text))]


def _splice(rng: random.Random, text: bytes) -> bytes:
    at = rng.randrange(len(text) + 1)
    return text[:at] + rng.choice(FRAGMENTS) + text[at:]


def _flip(rng: random.Random, text: bytes) -> bytes:
    at = rng.randrange(len(text))
    return text[:at] + bytes([rng.randrange(256)]) + text[at + 1 :]


def _batch(rng: random.Random, text: bytes) -> bytes:
    return b"[" + text + b"," + json.dumps(rng.choice(VALID)).encode() + b"]"


def _duplicate_id(rng: random.Random, text: bytes) -> bytes:
    return text.replace(b"{", b'{"id":' + str(rng.randrange(-5, 5)).encode() + b",", 1)


_TEXT_MUTATIONS: list[Callable[[random.Random, bytes], bytes]] = [
    _cut,
    _splice,
    _splice,
    _flip,
    _batch,
    _duplicate_id,
]


def plan(seed: int, count: int) -> list[bytes]:
    """`count` mutated messages, the same for the same seed."""
    rng = random.Random(seed)
    return [mutated(rng) for _ in range(count)]


def _problems_in(document: Any) -> list[str]:
    """What an answer holds that it must not: an internal error, in any of its messages."""
    found = []
    for message in document if isinstance(document, list) else [document]:
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            found.append(f"not a JSON-RPC message: {str(message)[:200]}")
            continue
        error = message.get("error")
        if isinstance(error, dict) and error.get("code") == INTERNAL_ERROR:
            found.append(f"internal error: {error}")
        if "internal error" in json.dumps(message.get("result", {})):
            found.append(f"a tool's internal error: {str(message['result'])[:300]}")
    return found


class StdioWire:
    """Sends mutated lines to a `dueflow serve` on stdio (past the handshake), each followed by a
    ping that must be answered within `timeout` seconds."""

    def __init__(self, server: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
        self.server = server
        self.timeout = timeout
        self.tally = WireTally()

    def run(self, lines: list[bytes]) -> WireTally:
        started = time.perf_counter()
        for number, line in enumerate(lines):
            self.send(line, f"wire-sentinel-{number}")
            if self.server.poll() is not None:
                self.tally.fail(line, f"the server exited ({self.server.returncode})")
                break
        self.tally.seconds = time.perf_counter() - started
        return self.tally

    def send(self, line: bytes, sentinel: str) -> None:
        assert self.server.stdin is not None and self.server.stdout is not None
        ping = {"jsonrpc": "2.0", "id": sentinel, "method": "ping"}
        self.server.stdin.write(line + b"\n" + json.dumps(ping).encode() + b"\n")
        self.server.stdin.flush()
        self.tally.sent += 1
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            raw = self.server.stdout.readline()
            if not raw:
                self.tally.fail(line, "stdout closed")
                return
            try:
                document = json.loads(raw)
            except ValueError:
                self.tally.fail(line, f"a line on stdout that is not JSON: {raw[:200]!r}")
                continue
            for problem in _problems_in(document):
                self.tally.fail(line, problem)
            if isinstance(document, dict) and document.get("id") == sentinel:
                return
            self.tally.answers += 1
            error = document.get("error") if isinstance(document, dict) else None
            if isinstance(error, dict) and isinstance(error.get("code"), int):
                code = error["code"]
                self.tally.error_codes[code] = self.tally.error_codes.get(code, 0) + 1
        self.tally.fail(line, f"the ping after it got no answer within {self.timeout} s")


class HttpWire:
    """POSTs mutated bodies to a streamable-HTTP MCP endpoint in one initialized session."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self.url = url
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
        }
        self.timeout = timeout
        self.tally = WireTally()

    async def run(self, bodies: list[bytes]) -> WireTally:
        started = time.perf_counter()
        async with httpx.AsyncClient(timeout=self.timeout) as http:
            await self._initialize(http)
            for body in bodies:
                await self.post(http, body)
            await self.post(http, json.dumps(VALID[0]).encode(), must_answer=True)
        self.tally.seconds = time.perf_counter() - started
        return self.tally

    async def _initialize(self, http: httpx.AsyncClient) -> None:
        answered = await http.post(self.url, json=INITIALIZE, headers=self.headers)
        answered.raise_for_status()
        session = answered.headers.get("mcp-session-id")
        if session:
            self.headers["Mcp-Session-Id"] = session
        self.headers["MCP-Protocol-Version"] = "2025-06-18"
        done = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        (await http.post(self.url, json=done, headers=self.headers)).raise_for_status()

    async def post(self, http: httpx.AsyncClient, body: bytes, must_answer: bool = False) -> None:
        self.tally.sent += 1
        try:
            response = await http.post(self.url, content=body, headers=self.headers)
        except httpx.HTTPError as exc:
            self.tally.fail(body, f"no HTTP answer: {type(exc).__name__}: {exc}")
            return
        status = response.status_code
        self.tally.statuses[status] = self.tally.statuses.get(status, 0) + 1
        if status >= 500:
            self.tally.fail(body, f"HTTP {status}: {response.text[:200]}")
            return
        if must_answer and status != 200:
            self.tally.fail(body, f"a valid request after the run got HTTP {status}")
        for document in _documents(response):
            self.tally.answers += 1
            if isinstance(document, list) or (isinstance(document, dict) and "jsonrpc" in document):
                for problem in _problems_in(document):
                    self.tally.fail(body, problem)
            elif status < 400 or not (isinstance(document, dict) and "error" in document):
                self.tally.fail(
                    body, f"HTTP {status} with neither JSON-RPC nor an error: {str(document)[:200]}"
                )


def _documents(response: httpx.Response) -> list[Any]:
    """The JSON an answer carries: its body, or each `data:` of an event stream."""
    if not response.content:
        return []
    if response.headers.get("content-type", "").startswith("text/event-stream"):
        # SSE lines end at CR, LF or CRLF only (str.splitlines would also cut at U+2028)
        documents, data = [], []
        for line in [*re.split(r"\r\n|\r|\n", response.text), ""]:
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif not line and data:
                documents.append(_json_or_text("\n".join(data)))
                data = []
        return documents
    return [_json_or_text(response.text)]


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def fuzz_stdio(home: Path, lines: list[bytes]) -> WireTally:
    """`lines` sent to `dueflow serve` on stdio as alice, its own process, in `home`."""
    env = {"DUEFLOW_DATA_DIR": str(home / "stdio"), "DUEFLOW_USER": "alice"}
    with stdio_session(home, **env) as server:
        return StdioWire(server).run(lines)


async def fuzz_http(home: Path, bodies: list[bytes]) -> WireTally:
    """`bodies` POSTed to `dueflow serve --transport http`, its own process, in `home`, in one
    session with alice's token (the per-user rate set high enough for a run)."""
    async with dueflow_http(
        home,
        free_port(),
        DUEFLOW_DATA_DIR=str(home / "http"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        DUEFLOW_CALLS_PER_SECOND="100000",
        DUEFLOW_CALLS_BURST="100000",
    ) as url:
        return await HttpWire(url, ALICE_TOKEN).run(bodies)
