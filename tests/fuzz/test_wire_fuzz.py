"""The CI sample of the wire fuzzer (tests/support/wire_fuzzing.py): a few hundred mutated MCP
messages to `dueflow serve` on stdio and over streamable HTTP, each its own process configured
through its settings, on a fixed seed. tests/bench/bench_wire_fuzz.py makes the long run."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ALICE_TOKEN, dueflow_http, free_port, stdio_session
from tests.support.wire_fuzzing import HttpWire, StdioWire, plan

SEED = 14
MESSAGES = 150


@pytest.fixture
def stdio_server(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`dueflow serve` on stdio as alice, past the MCP handshake."""
    with stdio_session(
        tmp_path, DUEFLOW_DATA_DIR=str(tmp_path / "data"), DUEFLOW_USER="alice"
    ) as proc:
        yield proc


def test_every_mutated_line_on_stdio_leaves_only_json_rpc_on_stdout_and_serving_on(
    stdio_server: subprocess.Popen[bytes],
) -> None:
    tally = StdioWire(stdio_server).run(plan(SEED, MESSAGES))
    assert tally.failures == [], "\n".join(tally.failures[:20])
    assert tally.sent == MESSAGES
    # the sample reaches the parser's refusals and the tools' answers alike
    assert tally.error_codes.get(-32700, 0) > 10, tally.error_codes
    assert tally.answers > MESSAGES // 2, tally


async def test_every_mutated_body_over_http_gets_an_answer_below_500_and_serving_goes_on(
    tmp_path: Path,
) -> None:
    async with dueflow_http(
        tmp_path,
        free_port(),
        DUEFLOW_DATA_DIR=str(tmp_path / "data"),
        DUEFLOW_TOKENS=f"{ALICE_TOKEN}=alice",
        DUEFLOW_CALLS_PER_SECOND="1000",
        DUEFLOW_CALLS_BURST="1000",
    ) as url:
        tally = await HttpWire(url, ALICE_TOKEN).run(plan(SEED + 1, MESSAGES))
    assert tally.failures == [], "\n".join(tally.failures[:20])
    assert tally.sent == MESSAGES + 1
    assert tally.statuses.get(200, 0) > 10 and tally.statuses.get(400, 0) > 10, tally.statuses
