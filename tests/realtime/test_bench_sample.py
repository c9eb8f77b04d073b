"""A tiny sample of tests/bench/bench_realtime.py (4 clients of 2 users, 20 connections of one):
the bench runs and every change reaches every client. Its figures are the bench's business."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_realtime.py"


def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_realtime", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(300)  # three server-side phases and reader processes of their own
async def test_the_realtime_bench_measures_every_message_of_a_small_run(tmp_path: Path) -> None:
    realtime = bench()
    async with realtime.serving("sqlite", tmp_path, ["ann", "ben"]) as served:
        rates = await realtime.rate_run(
            "sqlite", served, rate=20, seconds=0.5, per_user=2, settle=0.3
        )
        idle = await realtime.idle_run("sqlite", served, connections=20, changes=2, settle=0.2)
    assert (rates.changes, rates.messages, rates.missing) == (10, 20, 0)
    assert rates.relay_p50_ms + rates.gateway_p50_ms > 0
    assert idle.connections == 20 and idle.rss_after_mb > 0 and not math.isnan(idle.fanout_p99_ms)
    report = realtime.report([rates], [idle], 0.5)
    assert "| sqlite | 20 |" in report
