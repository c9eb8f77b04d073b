"""The CI sample of the wire fuzzer (tests/support/wire_fuzzing.py): a few hundred mutated MCP
messages to `dueflow serve` on stdio and over streamable HTTP, each its own process configured
through its settings, on a fixed seed. tests/bench/bench_wire_fuzz.py makes the long run."""

from __future__ import annotations

from pathlib import Path

from tests.support.wire_fuzzing import fuzz_http, fuzz_stdio, plan

SEED = 14
MESSAGES = 150


def test_every_mutated_line_on_stdio_leaves_only_json_rpc_on_stdout_and_serving_on(
    tmp_path: Path,
) -> None:
    tally = fuzz_stdio(tmp_path, plan(SEED, MESSAGES))
    assert tally.failures == [], "\n".join(tally.failures[:20])
    assert tally.sent == MESSAGES
    # the sample reaches the parser's refusals and the tools' answers alike
    assert tally.error_codes.get(-32700, 0) > 10, tally.error_codes
    assert tally.answers > MESSAGES // 2, tally


async def test_every_mutated_body_over_http_gets_an_answer_below_500_and_serving_goes_on(
    tmp_path: Path,
) -> None:
    tally = await fuzz_http(tmp_path, plan(SEED + 1, MESSAGES))
    assert tally.failures == [], "\n".join(tally.failures[:20])
    assert tally.sent == MESSAGES + 1
    assert tally.statuses.get(200, 0) > 10 and tally.statuses.get(400, 0) > 10, tally.statuses
