"""`dueflow serve` on stdio answers every line, even one it cannot read: a JSON-RPC error (as the
HTTP transport answers such a body), with the request's id when it can be read, and then goes on
serving."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import (
    INITIALIZE,
    STARTUP_SECONDS,
    answer,
    child_env,
    dueflow_command,
    send,
)

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
NESTED = "[" * 200 + "]" * 200


def call(request_id: int, arguments: str) -> str:
    """A tools/call of add_task as raw JSON text, its arguments given as raw JSON text."""
    return (
        f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call",'
        f'"params":{{"name":"add_task","arguments":{arguments}}}}}'
    )


MAX_LINE = 100_000


@pytest.fixture
def server(tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    """`dueflow serve` on stdio, past the MCP handshake, taking lines of 100,000 characters."""
    with subprocess.Popen(
        dueflow_command("serve"),
        env=child_env(
            tmp_path,
            DUEFLOW_DATA_DIR=str(tmp_path / "data"),
            DUEFLOW_USER="alice",
            DUEFLOW_MAX_REQUEST_BYTES=str(MAX_LINE),
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as proc:
        try:
            send(proc, INITIALIZE)
            assert answer(proc)["id"] == 1
            send(proc, {"jsonrpc": "2.0", "method": "notifications/initialized"})
            yield proc
        finally:
            proc.kill()


def write_line(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def still_serves(proc: subprocess.Popen[str]) -> None:
    """A valid request after the bad line is answered."""
    send(proc, {"jsonrpc": "2.0", "id": 99, "method": "tools/list"})
    listed = answer(proc)
    assert listed["id"] == 99
    assert "add_task" in {tool["name"] for tool in listed["result"]["tools"]}


@pytest.mark.parametrize(
    ("line", "code", "request_id"),
    [
        pytest.param(call(7, r'{"title":"x\ud800"}'), PARSE_ERROR, 7, id="lone surrogate"),
        pytest.param(call(8, f'{{"title":{NESTED}}}'), PARSE_ERROR, 8, id="nested 200 deep"),
        pytest.param(
            r'{"jsonrpc":"2.0","id":"a\ud800","method":"ping"}',
            PARSE_ERROR,
            None,
            id="lone surrogate in the id",
        ),
        pytest.param("this is not json", PARSE_ERROR, None, id="not json"),
        pytest.param('{"jsonrpc":"2.0","id":', PARSE_ERROR, None, id="cut short"),
        pytest.param(
            '{"jsonrpc":"2.0","id":"m","method":5}', INVALID_REQUEST, "m", id="bad method"
        ),
        pytest.param("[1, 2]", INVALID_REQUEST, None, id="a batch"),
        pytest.param('"just a string"', INVALID_REQUEST, None, id="not an object"),
    ],
)
def test_an_unreadable_line_is_answered_with_a_json_rpc_error_and_serving_goes_on(
    server: subprocess.Popen[str], line: str, code: int, request_id: int | str | None
) -> None:
    write_line(server, line)
    refused = answer(server)

    assert refused["jsonrpc"] == "2.0"
    assert refused["id"] == request_id
    assert refused["error"]["code"] == code
    assert "result" not in refused
    still_serves(server)


def test_a_stream_of_bad_lines_gets_one_answer_each_in_order(
    server: subprocess.Popen[str],
) -> None:
    lines = [call(n, r'{"title":"\udfff"}') for n in range(10, 15)] + ["nope"] * 3

    for line in lines:
        write_line(server, line)
    answers = [answer(server) for _ in lines]

    assert [a["id"] for a in answers] == [10, 11, 12, 13, 14, None, None, None]
    assert {a["error"]["code"] for a in answers} == {PARSE_ERROR}
    still_serves(server)


def test_nothing_is_written_for_a_refused_line(server: subprocess.Popen[str]) -> None:
    write_line(server, call(20, r'{"title":"x\ud800"}'))
    assert answer(server)["id"] == 20
    send(
        server,
        {
            "jsonrpc": "2.0",
            "id": 21,
            "method": "tools/call",
            "params": {"name": "list_tasks", "arguments": {"status": "all"}},
        },
    )
    listed = answer(server)

    assert listed["id"] == 21
    assert listed["result"]["structuredContent"]["tasks"] == []


def test_the_answer_is_one_json_line_on_stdout(server: subprocess.Popen[str]) -> None:
    assert server.stdout is not None
    write_line(server, "garbage")
    raw = server.stdout.readline()

    assert raw.endswith("\n")
    assert json.loads(raw)["error"]["message"].startswith("Parse error")
    server.terminate()
    assert server.wait(timeout=STARTUP_SECONDS) == 0


def test_a_line_over_the_limit_is_answered_without_being_read_whole(
    server: subprocess.Popen[str],
) -> None:
    description = "d" * (MAX_LINE * 3)
    write_line(server, call(30, json.dumps({"title": "big", "description": description})))
    refused = answer(server)
    send(
        server,
        {
            "jsonrpc": "2.0",
            "id": 31,
            "method": "tools/call",
            "params": {
                "name": "add_task",
                "arguments": {"title": "fits", "description": "d" * 9_000},
            },
        },
    )
    added = answer(server)

    assert refused["id"] is None
    assert refused["error"]["code"] == INVALID_REQUEST
    assert "Request too large" in refused["error"]["message"]
    assert "DUEFLOW_MAX_REQUEST_BYTES" in refused["error"]["message"]
    assert added["id"] == 31 and not added["result"]["isError"]
    still_serves(server)
