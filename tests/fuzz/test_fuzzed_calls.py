"""The CI sample of the fuzzer (tests/support/fuzzing.py): a few hundred calls per database,
drawn from every tool's published input schema with hostile values mixed in, on a fixed seed.
tests/bench/bench_fuzz.py makes the long run."""

from __future__ import annotations

from typing import Any

import pytest
from fastmcp import Client

from domain.clock import FixedClock
from dueflow.bootstrap import Runtime
from tests.support.fuzzing import Call, Fuzzer, plan

# a hang is caught per call (Fuzzer.timeout); the whole sample takes minutes on a loaded machine
pytestmark = pytest.mark.timeout(300)

SEED = 14
CALLS = 300
_plans: dict[int, list[Call]] = {}


async def planned(client: Client) -> list[Call]:
    """The sample's calls, drawn once from the input schemas the server publishes."""
    if SEED not in _plans:
        schemas: dict[str, Any] = {t.name: t.input_schema for t in await client.list_tools()}
        _plans[SEED] = plan(schemas, CALLS, SEED)
    return _plans[SEED]


async def test_the_sample_calls_every_tool(alice: Client) -> None:
    tools = {tool.name for tool in await alice.list_tools()}
    assert {call.tool for call in await planned(alice)} == tools


async def test_every_fuzzed_call_is_answered_or_refused_in_style_and_a_refusal_writes_nothing(
    runtime: Runtime, alice: Client, bob: Client, clock: FixedClock
) -> None:
    fuzzer = Fuzzer(runtime, {"alice": alice, "bob": bob}, clock=clock)
    tally = await fuzzer.run(await planned(alice))
    await fuzzer.check()
    assert tally.failures == [], "\n".join(tally.failures[:30])
    assert tally.calls == CALLS
    assert tally.answered > CALLS // 5 and tally.refused > CALLS // 5, tally


async def test_fuzzed_calls_made_eight_at_a_time_race_without_an_internal_error_or_a_lost_write(
    runtime: Runtime, alice: Client, bob: Client, clock: FixedClock
) -> None:
    """The same calls, eight in flight at once: writers race for the same tasks and keys."""
    fuzzer = Fuzzer(runtime, {"alice": alice, "bob": bob}, clock=clock, width=8)
    tally = await fuzzer.run(await planned(alice))
    await fuzzer.check()
    assert tally.failures == [], "\n".join(tally.failures[:30])
    assert tally.calls == CALLS
    assert tally.answered > CALLS // 5 and tally.refused > CALLS // 5, tally


async def test_the_sample_fuzzes_batches_sorting_and_done_filters(alice: Client) -> None:
    calls = await planned(alice)

    def drawn(tool: str, argument: str) -> int:
        return sum(call.tool == tool and argument in call.arguments for call in calls)

    assert drawn("add_task", "tasks") >= 5 and drawn("update_task", "tasks") >= 3
    transitions = ("complete_task", "reopen_task", "delete_task", "restore_task")
    assert sum(drawn(tool, "task_ids") for tool in transitions) >= 5
    assert drawn("list_tasks", "sort") >= 3 and drawn("list_tasks", "completed_after") >= 3
    assert drawn("agenda", "limit") >= 1
